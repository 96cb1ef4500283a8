package integration_tests

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/internal/redistest"
)

// revocationRoutes is an app with a login, a page that shows the session,
// and the buttons "log out my other devices" and "log out everywhere".
func revocationRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/me": echoSession,
		"/login": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Session-Update", `{"user":"`+r.URL.Query().Get("user")+`"}`)
		},
		"/logout-others": setsSession("X-Session-Revoke", "others"),
		"/logout-all":    setsSession("X-Session-Revoke", "all"),
		"/bad-revoke":    setsSession("X-Session-Revoke", "sometimes"),
	}
}

func revocationSite(store string) string {
	return `
	session {
		secret {env.IT_SESSION_SECRET}
		user_key user
		revocation_store ` + store + `
	}
	reverse_proxy {upstream}
`
}

// loginAs logs a device in as user and returns its cookie.
func loginAs(t *testing.T, gw *gateway, user string) string {
	t.Helper()
	resp, _ := get(t, gw.URL+"/login?user="+user, "")
	return sessionCookie(t, resp).Value
}

// Three devices of one user; the first logs the other two out. With cookie
// sessions, two Caddy instances and one Redis revocation map, the others
// open fresh sessions once the staleness bound has passed, on either
// instance; the first stays logged in. Another user is untouched.
func TestLogOutOtherDevicesAcrossInstances(t *testing.T) {
	server := redistest.Start(t)
	up := startUpstream(t, revocationRoutes())
	store := "redis {\n\t\t\taddress " + server.Addr + "\n\t\t\tstaleness 300ms\n\t\t}"
	one := startGateway(t, up.Addr(), revocationSite(store))
	two := startGateway(t, up.Addr(), revocationSite(store))

	a, b, c := loginAs(t, one, "alice"), loginAs(t, two, "alice"), loginAs(t, one, "alice")
	bob := loginAs(t, two, "bob")
	time.Sleep(1100 * time.Millisecond) // a revocation voids sessions created in earlier seconds

	resp, _ := get(t, one.URL+"/logout-others", a)
	a = sessionCookie(t, resp).Value // the device that asked gets a renewed session
	time.Sleep(400 * time.Millisecond)
	for name, device := range map[string]struct {
		gw     *gateway
		cookie string
		want   string
	}{
		"A, on one": {one, a, `{"user":"alice"}`},
		"A, on two": {two, a, `{"user":"alice"}`},
		"B, on two": {two, b, `{}`},
		"C, on one": {one, c, `{}`},
		"bob":       {two, bob, `{"user":"bob"}`},
	} {
		if _, body := get(t, device.gw.URL+"/me", device.cookie); body != device.want {
			t.Errorf("%s: %s, want %s", name, body, device.want)
		}
	}

	// Log out everywhere: this device too.
	resp, _ = get(t, two.URL+"/logout-all", a)
	if c := sessionCookie(t, resp); c.MaxAge >= 0 {
		t.Errorf("log out everywhere kept this device's cookie: %q", resp.Header.Values("Set-Cookie"))
	}
	time.Sleep(400 * time.Millisecond)
	if _, body := get(t, one.URL+"/me", a); body != "{}" {
		t.Errorf("after log out everywhere, the old cookie opens %s", body)
	}
}

// With one instance and the memory map; the admin API revokes a user; a
// bad revoke header is a malformed mutation.
func TestRevocationWithTheMemoryMapAndTheAdminAPI(t *testing.T) {
	up := startUpstream(t, revocationRoutes())
	gw := startGateway(t, up.Addr(), revocationSite("memory"))
	a, b := loginAs(t, gw, "alice"), loginAs(t, gw, "alice")

	resp, body := get(t, gw.URL+"/bad-revoke", a)
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("X-Session-Revoke: sometimes gave %d %s, want 502", resp.StatusCode, body)
	}
	time.Sleep(1100 * time.Millisecond)
	req, _ := http.NewRequest(http.MethodPost, gw.Admin+"/session/revoke", strings.NewReader(`{"user":"alice"}`))
	if resp, body := do(t, req); resp.StatusCode != 200 || !strings.Contains(body, `"user_revoked":1`) {
		t.Fatalf("admin revoke of a user: %d %s", resp.StatusCode, body)
	}
	time.Sleep(1100 * time.Millisecond) // the default staleness bound
	for _, cookie := range []string{a, b} {
		if _, body := get(t, gw.URL+"/me", cookie); body != "{}" {
			t.Errorf("a revoked user's session opens %s", body)
		}
	}
	_, metrics := get(t, gw.Admin+"/metrics", "")
	for _, want := range []string{`caddy_session_user_revocations_total{kind_origin="user/admin"} 1`, `caddy_session_opened_total{outcome="revoked"} 2`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// caddy session revoke --user revokes a user through the admin API.
func TestRevokeUserCommand(t *testing.T) {
	up := startUpstream(t, revocationRoutes())
	gw := startGateway(t, up.Addr(), revocationSite("memory"))
	bob := loginAs(t, gw, "bob")
	time.Sleep(1100 * time.Millisecond)
	out, ok := caddyCommand(t, "session", "revoke", "--user", "bob", "--address", strings.TrimPrefix(gw.Admin, "http://"))
	if !ok || !strings.Contains(out, `"user_revoked":1`) {
		t.Fatalf("caddy session revoke --user: %s", out)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, body := get(t, gw.URL+"/me", bob); body != "{}" {
		t.Errorf("bob's session after revoke --user: %s", body)
	}
}

// Log out other devices with server-side sessions, memory and Redis: the
// same three-device flow as with cookie sessions.
func TestLogOutOtherDevicesWithStores(t *testing.T) {
	server := redistest.Start(t)
	for name, stores := range map[string]string{
		"memory": "store memory\n\t\trevocation_store memory",
		"redis":  "store redis {\n\t\t\taddress " + server.Addr + "\n\t\t}\n\t\trevocation_store redis {\n\t\t\taddress " + server.Addr + "\n\t\t\tstaleness 200ms\n\t\t}",
	} {
		t.Run(name, func(t *testing.T) {
			up := startUpstream(t, revocationRoutes())
			gw := startGateway(t, up.Addr(), `
	session {
		secret {env.IT_SESSION_SECRET}
		user_key user
		`+stores+`
	}
	reverse_proxy {upstream}
`)
			a, b, c := loginAs(t, gw, "alice"), loginAs(t, gw, "alice"), loginAs(t, gw, "alice")
			time.Sleep(1100 * time.Millisecond)
			resp, _ := get(t, gw.URL+"/logout-others", a)
			a = sessionCookie(t, resp).Value
			time.Sleep(300 * time.Millisecond)
			for device, want := range map[string]string{a: `{"user":"alice"}`, b: `{}`, c: `{}`} {
				if _, body := get(t, gw.URL+"/me", device); body != want {
					t.Errorf("%s, want %s", body, want)
				}
			}
		})
	}
}
