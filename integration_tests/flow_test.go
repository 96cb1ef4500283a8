package integration_tests

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
)

func init() {
	// The test configurations read their secrets from the environment, the
	// way users are told to write them.
	os.Setenv("IT_SESSION_SECRET", currentSecret)
	os.Setenv("IT_SESSION_FALLBACK", fallbackSecret)
}

const sessionSite = `
	session {
		secret {env.IT_SESSION_SECRET}
		secret_fallbacks {env.IT_SESSION_FALLBACK}
	}
	reverse_proxy {upstream}
`

// appRoutes is a small legacy app that speaks the header protocol.
func appRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/me":        echoSession,
		"/login":     setsSession("X-Session-Update", `{"user":"alice"}`),
		"/login-p":   setsSession("X-Session-Update", `{"user":"alice","_permanent":true}`),
		"/cart":      setsSession("X-Session-Update", `{"cart":[1,"two"]}`),
		"/rename":    setsSession("X-Session-Update", `{"user":"Zoë 😀"}`),
		"/logout":    setsSession("X-Session-Replace", `{}`),
		"/drop-user": setsSession("X-Session-Update", `{"user":null}`),
	}
}

// seal makes a session cookie value with secret, as if issued at issued.
func seal(t *testing.T, secret, json string, issued time.Time) string {
	t.Helper()
	codec, err := sessioncore.NewSecureCookieCodec([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	v, err := codec.Encode("session", sessioncore.Payload{JSON: []byte(json), Issued: issued, Created: issued})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// openedWith reports which secret opens a cookie value: 0 for the current
// secret alone, -1 when it does not open with it.
func opensWithCurrentSecretOnly(t *testing.T, value string) bool {
	t.Helper()
	codec, _ := sessioncore.NewSecureCookieCodec([]byte(currentSecret))
	_, _, err := codec.Decode("session", value)
	return err == nil
}

func TestLoginReadUpdateLogoutFlow(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), sessionSite)

	resp, body := get(t, gw.URL+"/me", "")
	if body != "{}" || resp.Header.Get("Vary") != "Cookie" {
		t.Fatalf("anonymous: %q, Vary %q", body, resp.Header.Get("Vary"))
	}
	noSessionCookie(t, resp)

	resp, _ = get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp)
	if !login.HttpOnly || login.Path != "/" || !login.Expires.IsZero() || login.MaxAge != 0 {
		t.Errorf("login cookie %+v: want HttpOnly, Path=/ and no expiry (a browser-session cookie)", login)
	}
	if resp.Header.Get("Cache-Control") != "private" || resp.Header.Get("Vary") != "Cookie" {
		t.Errorf("login response Cache-Control %q, Vary %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Vary"))
	}
	noProtocolHeaders(t, "login response", resp.Header)

	resp, body = get(t, gw.URL+"/me", login.Value)
	if body != `{"user":"alice"}` {
		t.Errorf("after login the app saw %s", body)
	}
	noSessionCookie(t, resp) // read-only, not permanent: not reissued

	resp, _ = get(t, gw.URL+"/cart", login.Value)
	withCart := sessionCookie(t, resp)
	if _, body = get(t, gw.URL+"/me", withCart.Value); body != `{"cart":[1,"two"],"user":"alice"}` {
		t.Errorf("after update the app saw %s", body)
	}

	resp, _ = get(t, gw.URL+"/rename", withCart.Value)
	renamed := sessionCookie(t, resp)
	if _, body = get(t, gw.URL+"/me", renamed.Value); body != `{"cart":[1,"two"],"user":"Zo\u00eb \ud83d\ude00"}` {
		t.Errorf("non-ASCII must reach the app escaped, got %s", body)
	}

	resp, _ = get(t, gw.URL+"/logout", renamed.Value)
	deletion := sessionCookie(t, resp)
	line := resp.Header.Get("Set-Cookie")
	if deletion.Value != "" || deletion.MaxAge != -1 || !strings.Contains(line, "Expires=Thu, 01 Jan 1970 00:00:00 GMT") {
		t.Errorf("logout must delete the cookie, got %q", line)
	}
	if !strings.Contains(line, "Path=/") || !strings.Contains(line, "HttpOnly") {
		t.Errorf("deletion must carry the cookie's attributes: %q", line)
	}
}

func TestEmptiedSessionDeletesCookie(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), sessionSite)
	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp)

	resp, _ = get(t, gw.URL+"/drop-user", login.Value)
	if c := sessionCookie(t, resp); c.MaxAge != -1 {
		t.Errorf("removing the last key must delete the cookie, got %q", resp.Header.Get("Set-Cookie"))
	}
}

func TestPermanentSessionIsRefreshedOnEveryResponse(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), strings.Replace(sessionSite, "secret_fallbacks", "lifetime 2d\n\t\tsecret_fallbacks", 1))

	resp, _ := get(t, gw.URL+"/login-p", "")
	first := sessionCookie(t, resp)
	if first.MaxAge != 2*24*3600 {
		t.Errorf("permanent cookie Max-Age = %d, want the lifetime", first.MaxAge)
	}
	if d := time.Until(first.Expires); d < 47*time.Hour || d > 49*time.Hour {
		t.Errorf("permanent cookie expires in %s, want about 48h", d)
	}
	for i := range 3 {
		resp, body := get(t, gw.URL+"/me", first.Value)
		if body != `{"_permanent":true,"user":"alice"}` {
			t.Fatalf("read %d: %s", i, body)
		}
		if c := sessionCookie(t, resp); c.MaxAge != 2*24*3600 || resp.Header.Get("Vary") != "Cookie" {
			t.Errorf("read %d: refreshed cookie %+v, Vary %q", i, c, resp.Header.Get("Vary"))
		}
	}
}

func TestRefreshEachRequestOff(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), strings.Replace(sessionSite, "secret_fallbacks", "refresh_each_request false\n\t\tsecret_fallbacks", 1))
	resp, _ := get(t, gw.URL+"/login-p", "")
	login := sessionCookie(t, resp)
	resp, body := get(t, gw.URL+"/me", login.Value)
	if body != `{"_permanent":true,"user":"alice"}` {
		t.Fatalf("read: %s", body)
	}
	noSessionCookie(t, resp)
}

func TestCookiesThatDoNotOpen(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), sessionSite)
	resp, _ := get(t, gw.URL+"/login", "")
	valid := sessionCookie(t, resp).Value
	now := time.Now()

	tampered := []byte(valid)
	tampered[len(tampered)/2] ^= 1
	tests := []struct{ name, value string }{
		{"tampered", string(tampered)},
		{"truncated", valid[:len(valid)-10]},
		{"wrong key", seal(t, alienSecret, `{"user":"mallory"}`, now)},
		{"expired", seal(t, currentSecret, `{"user":"alice"}`, now.Add(-32*24*time.Hour))},
		{"issued in the future", seal(t, currentSecret, `{"user":"alice"}`, now.Add(time.Hour))},
		{"not base64", "%%%not-a-cookie%%%"},
		{"signed but not an object", seal(t, currentSecret, `["user","alice"]`, now)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, gw.URL+"/me", tt.value)
			if resp.StatusCode != 200 || body != "{}" {
				t.Errorf("want a fresh session, got %d %s", resp.StatusCode, body)
			}
			noSessionCookie(t, resp) // like Flask, a bad cookie is not deleted
		})
	}
	if !gw.WaitForLog(`"outcome":"bad_signature"`) || !gw.WaitForLog(`"outcome":"expired"`) {
		t.Errorf("the rejection reasons are not logged at debug level")
	}
}

func TestFallbackKeyOpensAndIsReissuedUnderCurrentKey(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), sessionSite)
	old := seal(t, fallbackSecret, `{"user":"bob"}`, time.Now())
	if opensWithCurrentSecretOnly(t, old) {
		t.Fatal("test setup: the fallback cookie opens with the current secret")
	}

	resp, body := get(t, gw.URL+"/me", old)
	if body != `{"user":"bob"}` {
		t.Fatalf("fallback cookie: app saw %s", body)
	}
	noSessionCookie(t, resp) // read-only: rewritten only when written

	resp, _ = get(t, gw.URL+"/cart", old)
	reissued := sessionCookie(t, resp)
	if !opensWithCurrentSecretOnly(t, reissued.Value) {
		t.Error("the reissued cookie is not sealed with the current secret")
	}
	if _, body = get(t, gw.URL+"/me", reissued.Value); body != `{"cart":[1,"two"],"user":"bob"}` {
		t.Errorf("after reissue the app saw %s", body)
	}
}

func TestVaryCookie(t *testing.T) {
	up := startUpstream(t, map[string]http.HandlerFunc{
		"/app/varies": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Vary", "Accept-Encoding")
			_, _ = w.Write([]byte("ok"))
		},
	})
	gw := startGateway(t, up.Addr(), `
	session /app/* {
		secret {env.IT_SESSION_SECRET}
	}
	reverse_proxy {upstream}
`)
	if resp, _ := get(t, gw.URL+"/app/plain", ""); resp.Header.Values("Vary")[0] != "Cookie" {
		t.Errorf("session route: Vary %q", resp.Header.Values("Vary"))
	}
	if resp, _ := get(t, gw.URL+"/app/varies", ""); strings.Join(resp.Header.Values("Vary"), "|") != "Accept-Encoding, Cookie" {
		t.Errorf("merged Vary %q", resp.Header.Values("Vary"))
	}
	if resp, _ := get(t, gw.URL+"/static/logo.png", ""); len(resp.Header.Values("Vary")) != 0 {
		t.Errorf("outside the session's scope: Vary %q", resp.Header.Values("Vary"))
	}
}
