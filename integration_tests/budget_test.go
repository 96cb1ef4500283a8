package integration_tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// growRoutes is an app that stores a value of ?n= bytes, and logs out.
func growRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/me": echoSession,
		"/grow": func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			w.Header().Set("X-Session-Update", `{"blob":"`+strings.Repeat("x", n)+`"}`)
		},
		"/logout": setsSession("X-Session-Replace", "{}"),
	}
}

// cookieLine is the Cookie header a browser sends back after resp, with
// other cookies after the session's: every cookie resp sets that is not
// being deleted.
func cookieLine(resp *http.Response, other ...string) string {
	var pairs []string
	for _, c := range resp.Cookies() {
		if c.MaxAge >= 0 && c.Value != "" {
			pairs = append(pairs, c.Name+"="+c.Value)
		}
	}
	return strings.Join(append(pairs, other...), "; ")
}

func getWithCookies(t *testing.T, url, cookies string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", cookies)
	return do(t, req)
}

// The lock-out: a session Caddy itself would refuse to read back
// (431 on every request, the logout included) is never issued.
func TestASessionNeverLocksItsUserOut(t *testing.T) {
	up := startUpstream(t, growRoutes())
	gw := startGateway(t, up.Addr(), strings.Replace(sessionSite, "session {", "session {\n\t\tmax_cookie_parts 8", 1))

	// 11,400 bytes once gave six cookies and 20 KB of Cookie header.
	resp, _ := get(t, gw.URL+"/grow?n=100", "")
	small := sessionCookie(t, resp).Value
	resp, _ = get(t, gw.URL+"/grow?n=11400", small)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("an 11,400-byte session: status %d, want 502", resp.StatusCode)
	}
	noSessionCookie(t, resp)
	if !gw.WaitForLog("max_cookie_bytes") {
		t.Error("no log line names the budget")
	}
	if resp, body := get(t, gw.URL+"/me", small); resp.StatusCode != 200 || !strings.Contains(body, `"blob"`) {
		t.Errorf("the old session after the refusal: %d %q", resp.StatusCode, body)
	}

	// The largest session the default budget takes, with two ordinary
	// 2.5 KB cookies of the site beside it: every request still answers.
	largest := 0
	var session *http.Response
	for n := 2400; n >= 1500; n -= 50 {
		if resp, _ := get(t, gw.URL+"/grow?n="+strconv.Itoa(n), ""); resp.StatusCode == 200 {
			largest, session = n, resp
			break
		}
	}
	if largest == 0 {
		t.Fatal("no session of 1,500 bytes or more was issued")
	}
	site := []string{"a=" + strings.Repeat("v", 2500), "b=" + strings.Repeat("w", 2500)}
	cookies := cookieLine(session, site...)
	if sent := len(cookieLine(session)); sent > 4096 {
		t.Errorf("the session's cookies take %d bytes of the Cookie line, over the default budget of 4096", sent)
	}
	for _, path := range []string{"/me", "/me", "/logout"} {
		if resp, _ := getWithCookies(t, gw.URL+path, cookies); resp.StatusCode != 200 {
			t.Errorf("%s with a %d-byte session and %d bytes of Cookie: status %d", path, largest, len(cookies), resp.StatusCode)
		}
	}
}

// Cookies issued under an older, larger budget open as a new session, and
// the response deletes them all; parts beyond the config's go too.
func TestCookiesOfAnOlderLargerBudgetAreDeleted(t *testing.T) {
	up := startUpstream(t, growRoutes())
	older := startGateway(t, up.Addr(), strings.Replace(sessionSite, "session {", "session {\n\t\tmax_cookie_bytes 12KiB", 1))
	current := startGateway(t, up.Addr(), sessionSite)

	resp, _ := get(t, older.URL+"/grow?n=5000", "")
	if len(resp.Cookies()) < 2 {
		t.Fatalf("the older config issued %d cookies, want a split session", len(resp.Cookies()))
	}
	split := cookieLine(resp)
	resp, body := getWithCookies(t, current.URL+"/me", split)
	if resp.StatusCode != 200 || body != "{}" {
		t.Fatalf("over the budget: %d %q, want a new session", resp.StatusCode, body)
	}
	deleted := map[string]bool{}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			deleted[c.Name] = true
		}
	}
	for _, c := range strings.Split(split, "; ") {
		name, _, _ := strings.Cut(c, "=")
		if !deleted[name] {
			t.Errorf("%s is not deleted (Set-Cookie %q)", name, resp.Header.Values("Set-Cookie"))
		}
	}
	if resp.Header.Get("Cache-Control") != "private" {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}

	// A leftover part numbered beyond the config's, beside a valid session.
	resp, _ = get(t, current.URL+"/grow?n=10", "")
	valid := sessionCookie(t, resp).Value
	resp, body = getWithCookies(t, current.URL+"/me", "session="+valid+"; session.7=leftover")
	if !strings.Contains(body, `"blob"`) {
		t.Errorf("the valid session beside a leftover part: %q", body)
	}
	if got := fmt.Sprint(resp.Header.Values("Set-Cookie")); !strings.Contains(got, "session.7=;") {
		t.Errorf("session.7 is not deleted: %s", got)
	}
}

func TestValidateChecksTheCookieBudgetAndPrefixes(t *testing.T) {
	t.Setenv("IT_SESSION_SECRET", currentSecret)
	tests := []struct {
		name, global, block string
		wantOut             string // "" : valid
	}{
		{"the default budget", "", "", ""},
		{"12 KiB under Caddy's default limit", "", "max_cookie_bytes 12KiB", ""},
		{"16 KiB under Caddy's default limit", "", "max_cookie_bytes 16KiB", "max_header_size"},
		{"16 KiB with a larger limit", "servers {\n\t\tmax_header_size 32KiB\n\t}", "max_cookie_bytes 16KiB", ""},
		{"the default budget, a small limit", "servers {\n\t\tmax_header_size 6KB\n\t}", "", "max_header_size"},
		{"a size Caddy cannot read", "", "max_cookie_bytes lots", "max_cookie_bytes must be a size"},
		{"__Host- without Secure", "", "cookie_name __Host-sess", "__Host- cookies must be Secure"},
		{"__host- on a path", "", "cookie_name __host-sess\n\t\tcookie_secure true\n\t\tcookie_path /app", "Path=/"},
		{"__Secure- without Secure", "", "cookie_name __Secure-sess", "__Secure- cookies must be Secure"},
		{"__Host- with its attributes", "", "cookie_name __Host-sess\n\t\tcookie_secure true", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Caddyfile")
			caddyfile := fmt.Sprintf("{\n\t%s\n}\n:8080 {\n\tsession {\n\t\tsecret {env.IT_SESSION_SECRET}\n\t\t%s\n\t}\n\trespond ok\n}\n", tt.global, tt.block)
			if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
				t.Fatal(err)
			}
			out, ok := caddyCommand(t, "validate", "--config", path, "--adapter", "caddyfile")
			switch {
			case tt.wantOut == "" && !ok:
				t.Errorf("caddy validate refused:\n%s\n%s", caddyfile, out)
			case tt.wantOut != "" && ok:
				t.Errorf("caddy validate accepted:\n%s", caddyfile)
			case tt.wantOut != "" && !strings.Contains(out, tt.wantOut):
				t.Errorf("output lacks %q:\n%s", tt.wantOut, out)
			}
		})
	}
}
