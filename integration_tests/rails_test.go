package integration_tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
	"github.com/sessiongate/caddy-session/sessioncore/codecs/rails"
)

const (
	debianRuby        = "/usr/bin/ruby"
	railsSecret       = "rails-secret-key-base-shared-with-the-gateway-0123456789abcdef0123456789abcdef"
	railsOldSecret    = "an-older-rails-secret-key-base-fedcba9876543210fedcba9876543210"
	railsCookieName   = "_app_session"
	railsWrongSecret  = "a-secret-key-base-neither-side-has-00000000000000000000000000000"
	railsStartTimeout = 20 * time.Second
)

// requireRails fails the test under CI=true, and skips it elsewhere, when
// Debian's Rails (ruby-actionpack, ruby-webrick) is not installed.
func requireRails(t *testing.T) {
	t.Helper()
	if err := exec.Command(debianRuby, "-e", `require "action_dispatch"; require "webrick"`).Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Debian's Rails is required (apt-get install ruby-actionpack ruby-activesupport ruby-rack ruby-webrick): %v", err)
		}
		t.Skipf("Debian's Rails is not installed: %v", err)
	}
}

// startRails runs integration_tests/railsapp/app.rb on a free loopback port.
func startRails(t *testing.T) string {
	t.Helper()
	requireRails(t)
	port := freePort(t)
	cmd := exec.Command(debianRuby, "railsapp/app.rb", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), "SECRET_KEY_BASE="+railsSecret, "OLD_SECRET_KEY_BASE="+railsOldSecret)
	return startApp(t, "rails", cmd, port, railsStartTimeout)
}

// startRailsGateway puts the gateway, with the rails codec, in front of a
// real Rails app (/rails/*) and a non-Rails app (everything else).
func startRailsGateway(t *testing.T) *gateway {
	t.Helper()
	railsAddr := startRails(t)
	other := startUpstream(t, map[string]http.HandlerFunc{
		"/me":   echoSession,
		"/cart": setsSession("X-Session-Update", `{"cart":[1,2]}`),
	})
	t.Setenv("IT_RAILS_SECRET", railsSecret)
	t.Setenv("IT_RAILS_OLD", railsOldSecret)
	return startGateway(t, other.Addr(), `
	session {
		codec rails
		cookie_name `+railsCookieName+`
		secret {env.IT_RAILS_SECRET}
		secret_fallbacks {env.IT_RAILS_OLD}
	}
	handle /rails/* {
		reverse_proxy `+railsAddr+`
	}
	handle {
		reverse_proxy {upstream}
	}
`)
}

func railsGet(t *testing.T, url, cookie string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", railsCookieName+"="+cookie)
	}
	return do(t, req)
}

// railsCookie returns the one session cookie a response sets.
func railsCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	var found []*http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == railsCookieName {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s Set-Cookie, got %q", railsCookieName, resp.Header.Values("Set-Cookie"))
	}
	return found[0]
}

// askRails returns the session the Rails app reads from cookie.
func askRails(t *testing.T, gw *gateway, cookie string) map[string]any {
	t.Helper()
	resp, body := railsGet(t, gw.URL+"/rails/whoami", cookie)
	if resp.StatusCode != 200 {
		t.Fatalf("whoami: %d %s", resp.StatusCode, body)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("whoami %q: %v", body, err)
	}
	return s
}

func railsCodec(t *testing.T, secret string) *rails.Codec {
	t.Helper()
	c, err := rails.New(nil, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRailsSharesTheSessionWithOtherApps(t *testing.T) {
	gw := startRailsGateway(t)

	// Rails logs the user in and sets the cookie itself.
	resp, body := railsGet(t, gw.URL+"/rails/login?user=alice", "")
	if body != "logged in" {
		t.Fatalf("login: %s", body)
	}
	login := railsCookie(t, resp)
	before := askRails(t, gw, login.Value)
	if before["user"] != "alice" || before["session_id"] == nil || before["_csrf_token"] == nil {
		t.Fatalf("rails reads %v", before)
	}

	// The gateway reads it: another app sees the session.
	var seen map[string]any
	if _, s := railsGet(t, gw.URL+"/me", login.Value); json.Unmarshal([]byte(s), &seen) != nil || seen["user"] != "alice" {
		t.Errorf("the other app saw %s", s)
	}

	// It changes the session through the header protocol; Rails reads the
	// change, and what the gateway did not touch (session_id, _csrf_token)
	// comes back as it was.
	resp, _ = railsGet(t, gw.URL+"/cart", login.Value)
	withCart := railsCookie(t, resp)
	after := askRails(t, gw, withCart.Value)
	if fmt.Sprint(after["cart"]) != "[1 2]" || after["user"] != "alice" ||
		after["session_id"] != before["session_id"] || after["_csrf_token"] != before["_csrf_token"] {
		t.Errorf("rails reads %v, before the change %v", after, before)
	}

	// Rails resets the session: the user is gone for everyone.
	resp, _ = railsGet(t, gw.URL+"/rails/logout", withCart.Value)
	out := railsCookie(t, resp)
	if s := askRails(t, gw, out.Value); s["user"] != nil || s["cart"] != nil {
		t.Errorf("after logout rails reads %v", s)
	}
	if _, s := railsGet(t, gw.URL+"/me", out.Value); strings.Contains(s, "alice") {
		t.Errorf("after logout the other app saw %s", s)
	}
}

func TestRailsFallbackKeyCookieIsReissuedUnderCurrentKey(t *testing.T) {
	gw := startRailsGateway(t)
	value, err := railsCodec(t, railsOldSecret).Encode(railsCookieName, sessioncore.Payload{JSON: []byte(`{"session_id":"abc","user":"bob"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if s := askRails(t, gw, value); s["user"] != "bob" {
		t.Errorf("rails did not open the fallback cookie: %v", s)
	}
	if _, seen := railsGet(t, gw.URL+"/me", value); !strings.Contains(seen, `"user":"bob"`) {
		t.Errorf("the gateway did not open the fallback cookie: %s", seen)
	}
	resp, _ := railsGet(t, gw.URL+"/cart", value)
	reissued := railsCookie(t, resp)
	if _, i, err := railsCodec(t, railsSecret).Decode(railsCookieName, reissued.Value); err != nil || i != 0 {
		t.Errorf("the reissued cookie is not under the current key: %v", err)
	}
	if s := askRails(t, gw, reissued.Value); s["user"] != "bob" || fmt.Sprint(s["cart"]) != "[1 2]" {
		t.Errorf("rails reads %v", s)
	}
}

func TestRailsAndTheGatewayRejectTheSameCookies(t *testing.T) {
	gw := startRailsGateway(t)
	current := railsCodec(t, railsSecret)
	session := sessioncore.Payload{JSON: []byte(`{"session_id":"abc","user":"mallory"}`), Expires: time.Now().Add(time.Hour)}
	good, _ := current.Encode(railsCookieName, session)
	expired, _ := current.Encode(railsCookieName, sessioncore.Payload{JSON: session.JSON, Expires: time.Now().Add(-time.Second)})
	otherCookie, _ := current.Encode("_other_session", session)
	wrongKey, _ := railsCodec(t, railsWrongSecret).Encode(railsCookieName, session)
	tampered := []byte(good)
	tampered[5] ^= 1
	if tampered[5] == '%' || tampered[5] == '+' {
		tampered[5] ^= 3
	}
	for name, value := range map[string]string{"expired": expired, "wrong purpose": otherCookie, "wrong key": wrongKey, "tampered": string(tampered)} {
		if s := askRails(t, gw, value); s["user"] != nil {
			t.Errorf("%s: rails reads %v", name, s)
		}
		if _, seen := railsGet(t, gw.URL+"/me", value); strings.Contains(seen, "mallory") {
			t.Errorf("%s: the gateway opened it: %s", name, seen)
		}
	}
	// The same session, sealed properly, opens on both sides.
	if s := askRails(t, gw, good); s["user"] != "mallory" {
		t.Errorf("a valid cookie: rails reads %v", s)
	}
	if _, seen := railsGet(t, gw.URL+"/me", good); !strings.Contains(seen, "mallory") {
		t.Errorf("a valid cookie: the gateway saw %s", seen)
	}
}
