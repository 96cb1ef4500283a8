package integration_tests

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// caddyCommand runs the gateway binary with args and returns its combined
// output and whether it succeeded.
func caddyCommand(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(caddyBinary, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir, "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func TestValidateRejectsBadConfigs(t *testing.T) {
	tests := []struct {
		name    string
		block   string
		wantOut []string
	}{
		{"missing secret", "session {\n\t\tcookie_name sid\n\t}", []string{"secret is required", "Caddyfile:2"}},
		{"short secret", "session {\n\t\tsecret abc\n\t}", []string{"secret is 3 bytes long; it must be at least 32", "Caddyfile:3"}},
		{"short secret from the environment", "session {\n\t\tsecret {env.IT_SHORT_SECRET}\n\t}", []string{"secret is 5 bytes long"}},
		{"unknown subdirective", "session {\n\t\tsecret {env.IT_SESSION_SECRET}\n\t\tcookie_colour blue\n\t}", []string{`unrecognized session subdirective \"cookie_colour\"`, "Caddyfile:4"}},
		{"bad value", "session {\n\t\tsecret {env.IT_SESSION_SECRET}\n\t\tcookie_samesite sometimes\n\t}", []string{"cookie_samesite must be lax, strict or none", "Caddyfile:4"}},
		{"bad duration", "session {\n\t\tsecret {env.IT_SESSION_SECRET}\n\t\tlifetime soon\n\t}", []string{"lifetime must be a positive duration", "Caddyfile:4"}},
		{"back-channel logout without a revocation store", "session {\n\t\tsecret {env.IT_SESSION_SECRET}\n\t\tuser_key uid\n\t\tlogin oidc {\n\t\t\tissuer http://127.0.0.1:1/oidc\n\t\t\tclient_id c\n\t\t\tclient_secret {env.IT_SHORT_SECRET}\n\t\t\tbackchannel_logout_path /bc\n\t\t}\n\t}", []string{"backchannel_logout_path", "a memory or Redis store or a revocation_store"}},
		{"forwarded access token without a store", "session {\n\t\tsecret {env.IT_SESSION_SECRET}\n\t\tlogin oidc {\n\t\t\tissuer http://127.0.0.1:1/oidc\n\t\t\tclient_id c\n\t\t\tforward_access_token Authorization\n\t\t}\n\t}", []string{"forward_access_token needs a memory or Redis store"}},
		{"forwarded access token in a protocol header", "session {\n\t\tsecret {env.IT_SESSION_SECRET}\n\t\tstore memory\n\t\tlogin oidc {\n\t\t\tissuer http://127.0.0.1:1/oidc\n\t\t\tclient_id c\n\t\t\tforward_access_token X-Session-Token\n\t\t}\n\t}", []string{"X-Session-Token"}},
	}
	t.Setenv("IT_SHORT_SECRET", "s3cr3")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Caddyfile")
			caddyfile := fmt.Sprintf(":8080 {\n\t%s\n\trespond ok\n}\n", tt.block)
			if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
				t.Fatal(err)
			}
			out, ok := caddyCommand(t, "validate", "--config", path, "--adapter", "caddyfile")
			if ok {
				t.Fatalf("caddy validate accepted:\n%s", caddyfile)
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "s3cr3") {
				t.Error("the output reveals the secret")
			}
		})
	}
}

func TestExampleCaddyfileValidates(t *testing.T) {
	out, ok := caddyCommand(t, "validate", "--config", "../Caddyfile.example", "--adapter", "caddyfile")
	if !ok || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("caddy validate Caddyfile.example:\n%s", out)
	}
}

// runExample runs Caddyfile.example as shipped, moved to free ports, and
// returns its demo gateway (8080), its edge-auth gateway (8090) and the
// port of the demo app (8081).
func runExample(t *testing.T) (demo, edge *gateway, appPort int) {
	t.Helper()
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 4)
	demoPort, edgePort, appPort, admin := ports[0], ports[1], ports[2], ports[3]
	text := string(example)
	for _, r := range [][2]string{
		{"localhost:8080", fmt.Sprintf("localhost:%d", demoPort)},
		{"localhost:8090", fmt.Sprintf("localhost:%d", edgePort)},
		{"127.0.0.1:8081", fmt.Sprintf("127.0.0.1:%d", appPort)},
		{"\n:8081 {", fmt.Sprintf("\n:%d {", appPort)},
	} {
		if !strings.Contains(text, r[0]) {
			t.Fatalf("Caddyfile.example no longer has %q", r[0])
		}
		text = strings.ReplaceAll(text, r[0], r[1])
	}
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == "{" {
			t.Fatal("Caddyfile.example now has global options: merge the test's into them")
		}
		break
	}
	text = fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n}\n", admin) + text
	demo = runCaddy(t, text, fmt.Sprintf("http://localhost:%d", demoPort))
	edge = &gateway{URL: fmt.Sprintf("http://localhost:%d", edgePort)}
	// One Caddy serves all three; wait for the other two as well.
	for _, p := range []int{edgePort, appPort} {
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the example does not listen on %s", addr)
			}
		}
	}
	return demo, edge, appPort
}

// TestExampleCaddyfileRuns walks the demo site of Caddyfile.example as a
// visitor would: it listens on loopback alone, says who is logged in,
// shows the X-Session header (escaped) beneath, and keeps its cookie apart
// from the edge-auth site's.
func TestExampleCaddyfileRuns(t *testing.T) {
	gw, edge, appPort := runExample(t)
	const demo, edgeName = "demo_session", "edge_session"

	port := func(g *gateway) int {
		p, _ := strconv.Atoi(g.URL[strings.LastIndex(g.URL, ":")+1:])
		return p
	}
	requireLoopbackOnly(t, "the demo site", port(gw), "127.0.0.1", "::1")
	requireLoopbackOnly(t, "the edge-auth site", port(edge), "127.0.0.1", "::1")
	requireLoopbackOnly(t, "the demo app", appPort, "127.0.0.1")

	resp, body := get(t, gw.URL+"/", "")
	if !strings.Contains(body, "Not logged in") || !strings.Contains(body, `<link rel="stylesheet" href="/static/demo.css">`) || !strings.Contains(body, "<pre>{}</pre>") {
		t.Errorf("home page, anonymous: %s", body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("home page Content-Type %q", ct)
	}
	if resp, css := get(t, gw.URL+"/static/demo.css", ""); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(css, "body {") {
		t.Errorf("CSS: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), css)
	}
	if _, body := get(t, gw.URL+"/login", ""); !strings.Contains(body, `<form action="/login" method="get">`) || !strings.Contains(body, `name="next" value="/"`) {
		t.Errorf("login form: %s", body)
	}

	// Log in with a role: a permanent session, a redirect home, and a page
	// that names the user and the role.
	resp, body = get(t, gw.URL+"/login?user=alice&role=admin", "")
	login := namedCookie(t, resp, demo)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || !strings.Contains(body, "Logged in as alice.") {
		t.Errorf("login: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if login.MaxAge != 7*24*3600 {
		t.Errorf("the demo's session is permanent for 7 days, got Max-Age %d", login.MaxAge)
	}
	alice := demo + "=" + login.Value
	_, body = getCookies(t, gw.URL+"/", alice)
	if !strings.Contains(body, `<p class="who">Logged in as alice (admin)</p>`) {
		t.Errorf("home page does not say who is logged in: %s", body)
	}
	if !strings.Contains(body, `<pre>{&#34;_permanent&#34;:true,&#34;role&#34;:&#34;admin&#34;,&#34;user&#34;:&#34;alice&#34;}</pre>`) {
		t.Errorf("home page does not show the X-Session header it received: %s", body)
	}

	// Logging in again without a role drops the role.
	resp, _ = getCookies(t, gw.URL+"/login?user=bob", alice)
	_, body = getCookies(t, gw.URL+"/", demo+"="+namedCookie(t, resp, demo).Value)
	if !strings.Contains(body, `<p class="who">Logged in as bob</p>`) {
		t.Errorf("bob, without a role: %s", body)
	}

	// A hostile user name is text, in the "who" line and in X-Session.
	resp, body = get(t, gw.URL+"/login?user="+url.QueryEscape(`<script>alert(1)</script>`)+"&role="+url.QueryEscape(`"><img src=x onerror=alert(2)>`), "")
	hostile := demo + "=" + namedCookie(t, resp, demo).Value
	if strings.Contains(body, "<script>") {
		t.Errorf("the login page prints a user name as markup: %s", body)
	}
	_, body = getCookies(t, gw.URL+"/", hostile)
	if !strings.Contains(body, `Logged in as &lt;script&gt;alert(1)&lt;/script&gt; (&#34;&gt;&lt;img src=x onerror=alert(2)&gt;)`) {
		t.Errorf("the hostile name is not shown escaped: %s", body)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
		t.Errorf("a user name became markup: %s", body)
	}

	// Cookies ignore ports: each site reads its own cookie only, so
	// logging in on one does not change the other.
	resp, _ = getCookies(t, edge.URL+"/login?user=mallory&role=admin", "")
	edgeLogin := edgeName + "=" + namedCookie(t, resp, edgeName).Value
	if _, body := getCookies(t, gw.URL+"/", edgeLogin); !strings.Contains(body, "Not logged in") {
		t.Errorf("the demo site reads the edge site's cookie: %s", body)
	}
	if _, body := getCookies(t, gw.URL+"/", edgeLogin+"; "+alice); !strings.Contains(body, "Logged in as alice (admin)") {
		t.Errorf("with both cookies, the demo site: %s", body)
	}
	if resp, _ := getCookies(t, edge.URL+"/app/", alice); resp.StatusCode != http.StatusFound {
		t.Errorf("the edge site let the demo site's cookie in: %d", resp.StatusCode)
	}

	// A client cannot hand the app a session of its own.
	if _, body := getCookies(t, gw.URL+"/", "", "X-Session", `{"user":"mallory"}`, "X_Session", `{"user":"mallory"}`); !strings.Contains(body, "Not logged in") || strings.Contains(body, "mallory") {
		t.Errorf("a spoofed X-Session reached the app: %s", body)
	}

	// Log out: the cookie is deleted and the browser sent home.
	resp, _ = getCookies(t, gw.URL+"/logout", alice)
	if c := namedCookie(t, resp, demo); c.MaxAge != -1 {
		t.Errorf("logout did not delete the cookie: %q", resp.Header.Get("Set-Cookie"))
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
