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
	"github.com/sessiongate/caddy-session/sessioncore/codecs/cookiesession"
)

const (
	expressSecret       = "express-secret-shared-with-the-gateway"
	expressOldSecret    = "an-older-express-secret"
	expressWrongSecret  = "a-secret-neither-side-has"
	expressStartTimeout = 20 * time.Second
)

// requireExpress makes integration_tests/expressapp's pinned packages
// available (npm ci, when .ci/run has not), failing the test under CI=true
// and skipping it elsewhere when node or npm is missing.
func requireExpress(t *testing.T) {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	if _, err := exec.LookPath("node"); err != nil {
		fail("node is required (apt-get install nodejs npm): %v", err)
	}
	if _, err := os.Stat("expressapp/node_modules/cookie-session/package.json"); err == nil {
		return
	}
	if _, err := exec.LookPath("npm"); err != nil {
		fail("npm is required to install expressapp's packages (apt-get install npm): %v", err)
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = "expressapp"
	if out, err := cmd.CombinedOutput(); err != nil {
		fail("npm ci in expressapp: %v\n%s", err, out)
	}
}

// startExpress runs integration_tests/expressapp/app.js on a free loopback
// port, with the keys given.
func startExpress(t *testing.T, keys ...string) string {
	t.Helper()
	requireExpress(t)
	port := freePort(t)
	cmd := exec.Command("node", "app.js", fmt.Sprint(port))
	cmd.Dir = "expressapp"
	cmd.Env = append(os.Environ(), "EXPRESS_SECRET="+keys[0])
	if len(keys) > 1 {
		cmd.Env = append(cmd.Env, "EXPRESS_OLD_SECRET="+keys[1])
	}
	return startApp(t, "express", cmd, port, expressStartTimeout)
}

// startExpressGateway puts the gateway, with the cookie-session codec, in
// front of a real Express app (/express/*) and a non-Express app
// (everything else). It returns the gateway and the Express app's address.
func startExpressGateway(t *testing.T) (*gateway, string) {
	t.Helper()
	expressAddr := startExpress(t, expressSecret, expressOldSecret)
	other := startUpstream(t, map[string]http.HandlerFunc{
		"/me":   echoSession,
		"/cart": setsSession("X-Session-Update", `{"cart":[1,2]}`),
	})
	t.Setenv("IT_EXPRESS_SECRET", expressSecret)
	t.Setenv("IT_EXPRESS_OLD", expressOldSecret)
	return startGateway(t, other.Addr(), `
	session {
		codec cookie-session
		secret {env.IT_EXPRESS_SECRET}
		secret_fallbacks {env.IT_EXPRESS_OLD}
	}
	handle /express/* {
		reverse_proxy `+expressAddr+`
	}
	handle {
		reverse_proxy {upstream}
	}
`), expressAddr
}

// expressPair is cookie-session's two cookies.
type expressPair struct{ value, sig string }

func (p expressPair) cookie() string {
	c := "session=" + p.value
	if p.sig != "" {
		c += "; session.sig=" + p.sig
	}
	return c
}

func expressGet(t *testing.T, url string, p expressPair) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.value != "" {
		req.Header.Set("Cookie", p.cookie())
	}
	return do(t, req)
}

// responsePair returns the one pair a response sets, failing the test
// unless it sets each cookie exactly once.
func responsePair(t *testing.T, resp *http.Response) (value, sig *http.Cookie) {
	t.Helper()
	count := map[string]int{}
	for _, c := range resp.Cookies() {
		count[c.Name]++
		switch c.Name {
		case "session":
			value = c
		case "session.sig":
			sig = c
		}
	}
	if count["session"] != 1 || count["session.sig"] != 1 || len(resp.Cookies()) != 2 {
		t.Fatalf("want one session and one session.sig Set-Cookie, got %q", resp.Header.Values("Set-Cookie"))
	}
	return value, sig
}

func pairOf(t *testing.T, resp *http.Response) expressPair {
	t.Helper()
	v, s := responsePair(t, resp)
	return expressPair{v.Value, s.Value}
}

// askExpress returns the session the Express app at base reads from p.
func askExpress(t *testing.T, base string, p expressPair) map[string]any {
	t.Helper()
	resp, body := expressGet(t, base+"/express/whoami", p)
	if resp.StatusCode != 200 {
		t.Fatalf("whoami: %d %s", resp.StatusCode, body)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("whoami %q: %v", body, err)
	}
	return s
}

func expressSeal(t *testing.T, secret, session string) expressPair {
	t.Helper()
	c, err := cookiesession.New([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := c.Encode("session", sessioncore.Payload{JSON: []byte(session)})
	if err != nil {
		t.Fatal(err)
	}
	v, s, _ := sessioncore.SplitPair(sealed)
	return expressPair{v, s}
}

func TestExpressSharesTheSessionWithOtherApps(t *testing.T) {
	gw, direct := startExpressGateway(t)
	direct = "http://" + direct

	// Express logs the user in and sets its pair; the gateway adopts it
	// and writes back exactly one pair.
	resp, body := expressGet(t, gw.URL+"/express/login?user=alice&csrf=tok-123", expressPair{})
	if body != "logged in" {
		t.Fatalf("login: %s", body)
	}
	login := pairOf(t, resp)
	before := askExpress(t, gw.URL, login)
	if before["user"] != "alice" || before["csrf"] != "tok-123" {
		t.Fatalf("express reads %v", before)
	}

	// A pair the gateway does not touch reaches Express byte for byte
	// (Express verifies the signature of the exact bytes), and no cookie
	// is written back.
	ownResp, _ := expressGet(t, direct+"/express/login?user=alice&csrf=tok-123", expressPair{})
	own := pairOf(t, ownResp)
	resp, body = expressGet(t, gw.URL+"/express/whoami", own)
	if body != `{"user":"alice","csrf":"tok-123"}` || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("Express's own pair through the gateway: %s, %q", body, resp.Header.Values("Set-Cookie"))
	}

	// The gateway reads it: another app sees the session.
	if _, s := expressGet(t, gw.URL+"/me", login); !strings.Contains(s, `"user":"alice"`) {
		t.Errorf("the other app saw %s", s)
	}

	// It changes the session through the header protocol; Express reads
	// the change, and what the gateway did not touch comes back as it was.
	resp, _ = expressGet(t, gw.URL+"/cart", login)
	withCart := pairOf(t, resp)
	after := askExpress(t, direct, withCart)
	if fmt.Sprint(after["cart"]) != "[1 2]" || after["user"] != "alice" || after["csrf"] != "tok-123" {
		t.Errorf("express reads %v, before the change %v", after, before)
	}

	// Express logs out: both cookies are deleted, and the user is gone
	// for everyone.
	resp, _ = expressGet(t, gw.URL+"/express/logout", withCart)
	v, s := responsePair(t, resp)
	if v.Value != "" || s.Value != "" || v.MaxAge >= 0 || s.MaxAge >= 0 {
		t.Errorf("logout: %q", resp.Header.Values("Set-Cookie"))
	}
	if _, s := expressGet(t, gw.URL+"/me", expressPair{v.Value, s.Value}); strings.Contains(s, "alice") {
		t.Errorf("after logout the other app saw %s", s)
	}
}

func TestExpressFallbackKeyCookieIsReissuedUnderCurrentKey(t *testing.T) {
	gw, direct := startExpressGateway(t)
	old := expressSeal(t, expressOldSecret, `{"user":"bob"}`)
	if s := askExpress(t, "http://"+direct, old); s["user"] != "bob" {
		t.Errorf("express did not open the fallback cookie: %v", s)
	}
	if _, seen := expressGet(t, gw.URL+"/me", old); !strings.Contains(seen, `"user":"bob"`) {
		t.Errorf("the gateway did not open the fallback cookie: %s", seen)
	}
	resp, _ := expressGet(t, gw.URL+"/cart", old)
	reissued := pairOf(t, resp)
	current, _ := cookiesession.New([]byte(expressSecret))
	if _, i, err := current.Decode("session", reissued.value+";"+reissued.sig); err != nil || i != 0 {
		t.Errorf("the reissued pair is not under the current key: %v", err)
	}
	if s := askExpress(t, "http://"+direct, reissued); s["user"] != "bob" || fmt.Sprint(s["cart"]) != "[1 2]" {
		t.Errorf("express reads %v", s)
	}
}

func TestExpressAndTheGatewayRejectTheSameCookies(t *testing.T) {
	gw, direct := startExpressGateway(t)
	good := expressSeal(t, expressSecret, `{"user":"mallory"}`)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for name, p := range map[string]expressPair{
		"wrong key":          expressSeal(t, expressWrongSecret, `{"user":"mallory"}`),
		"tampered value":     {flip(good.value, 4), good.sig},
		"tampered signature": {good.value, flip(good.sig, 4)},
		"no signature":       {good.value, ""},
	} {
		if s := askExpress(t, "http://"+direct, p); s["user"] != nil {
			t.Errorf("%s: express reads %v", name, s)
		}
		if s := askExpress(t, gw.URL, p); s["user"] != nil {
			t.Errorf("%s: express behind the gateway reads %v", name, s)
		}
		if _, seen := expressGet(t, gw.URL+"/me", p); strings.Contains(seen, "mallory") {
			t.Errorf("%s: the gateway opened it: %s", name, seen)
		}
	}
	// The same session, signed properly, opens on both sides.
	if s := askExpress(t, "http://"+direct, good); s["user"] != "mallory" {
		t.Errorf("a valid pair: express reads %v", s)
	}
	if _, seen := expressGet(t, gw.URL+"/me", good); !strings.Contains(seen, "mallory") {
		t.Errorf("a valid pair: the gateway saw %s", seen)
	}
}
