package integration_tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
// returns its demo gateway (8080) and its edge-auth gateway (8090).
func runExample(t *testing.T) (demo, edge *gateway) {
	t.Helper()
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 4)
	demoPort, edgePort, appPort, admin := ports[0], ports[1], ports[2], ports[3]
	text := string(example)
	text = strings.ReplaceAll(text, "localhost:8080", fmt.Sprintf("localhost:%d", demoPort))
	text = strings.ReplaceAll(text, "localhost:8090", fmt.Sprintf("localhost:%d", edgePort))
	text = strings.ReplaceAll(text, "127.0.0.1:8081", fmt.Sprintf("127.0.0.1:%d", appPort))
	text = strings.ReplaceAll(text, ":8081 {", fmt.Sprintf(":%d {", appPort))
	text = fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n}\n", admin) + text
	demo = runCaddy(t, text, fmt.Sprintf("http://localhost:%d", demoPort))
	edge = &gateway{URL: fmt.Sprintf("http://localhost:%d", edgePort)}
	return demo, edge
}

// TestExampleCaddyfileRuns walks the demo of Caddyfile.example: log in, see
// the session, log out.
func TestExampleCaddyfileRuns(t *testing.T) {
	gw, _ := runExample(t)

	resp, body := get(t, gw.URL+"/login?user=alice", "")
	login := sessionCookie(t, resp)
	if !strings.Contains(body, "Logged in as <b>alice</b>") {
		t.Errorf("login page: %s", body)
	}
	if login.MaxAge != 7*24*3600 {
		t.Errorf("the demo's session is permanent for 7 days, got Max-Age %d", login.MaxAge)
	}
	_, body = get(t, gw.URL+"/", login.Value)
	if !strings.Contains(body, `&#34;user&#34;:&#34;alice&#34;`) {
		t.Errorf("home page does not show the session: %s", body)
	}
	resp, _ = get(t, gw.URL+"/logout", login.Value)
	if c := sessionCookie(t, resp); c.MaxAge != -1 {
		t.Errorf("logout did not delete the cookie: %q", resp.Header.Get("Set-Cookie"))
	}
}
