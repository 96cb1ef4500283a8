package integration_tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
	"github.com/sessiongate/caddy-session/sessioncore/codecs/django"
)

const (
	djangoSecret    = "django-secret-key-shared-with-the-gateway"
	djangoOldSecret = "an-older-django-secret"
	djangoLifetime  = 14 * 24 * time.Hour // SESSION_COOKIE_AGE in djangoapp/settings.py
)

// requireDjango fails the test under CI=true, and skips it elsewhere, when
// Debian's python3-django is not installed.
func requireDjango(t *testing.T) {
	t.Helper()
	if err := exec.Command(debianPython, "-c", "import django").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-django is required (apt-get install python3-django): %v", err)
		}
		t.Skipf("python3-django is not installed: %v", err)
	}
}

// The Django app, started once for all the tests of this file: its
// development server takes a second to start. It exits when the test
// process does (serve.py watches its standard input, a pipe this process
// holds).
var djangoApp struct {
	once sync.Once
	addr string
	err  error
	mu   sync.Mutex
	log  strings.Builder
	// stdin is Django's standard input, held open for the life of the
	// test binary: serve.py exits when it closes, and an unreferenced
	// pipe is closed by its finalizer at the next garbage collection.
	stdin io.WriteCloser
}

type djangoLog struct{}

func (djangoLog) Write(p []byte) (int, error) {
	djangoApp.mu.Lock()
	defer djangoApp.mu.Unlock()
	return djangoApp.log.Write(p)
}

// startDjango runs integration_tests/djangoapp under Django's own
// development server on a free loopback port, once, and returns its address.
func startDjango(t *testing.T) string {
	t.Helper()
	requireDjango(t)
	djangoApp.once.Do(func() {
		port := freePort(t)
		cmd := exec.Command(debianPython, "djangoapp/serve.py", fmt.Sprint(port))
		cmd.Env = append(os.Environ(), "DJANGO_SECRET_KEY="+djangoSecret,
			"DJANGO_SECRET_KEY_FALLBACKS="+djangoOldSecret, "PYTHONDONTWRITEBYTECODE=1")
		cmd.Stdout, cmd.Stderr = djangoLog{}, djangoLog{}
		stdin, err := cmd.StdinPipe() // never closed: see serve.py
		if err != nil {
			djangoApp.err = err
			return
		}
		djangoApp.stdin = stdin
		if err := cmd.Start(); err != nil {
			djangoApp.err = err
			return
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				djangoApp.addr = addr
				return
			}
			if time.Now().After(deadline) {
				djangoApp.err = fmt.Errorf("django did not start")
				return
			}
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			djangoApp.mu.Lock()
			t.Logf("django log:\n%s", djangoApp.log.String())
			djangoApp.mu.Unlock()
		}
	})
	if djangoApp.err != nil {
		t.Fatal(djangoApp.err)
	}
	return djangoApp.addr
}

// startDjangoGateway puts the gateway, with the django codec, in front of
// the Django app (/django/*) and a non-Django app (everything else).
func startDjangoGateway(t *testing.T) *gateway {
	t.Helper()
	djangoAddr := startDjango(t)
	other := startUpstream(t, map[string]http.HandlerFunc{
		"/me":   echoSession,
		"/cart": setsSession("X-Session-Update", `{"cart":[1,2]}`),
	})
	t.Setenv("IT_DJANGO_SECRET", djangoSecret)
	t.Setenv("IT_DJANGO_OLD", djangoOldSecret)
	return startGateway(t, other.Addr(), `
	session {
		codec django
		secret {env.IT_DJANGO_SECRET}
		secret_fallbacks {env.IT_DJANGO_OLD}
		lifetime 14d
	}
	handle /django/* {
		reverse_proxy `+djangoAddr+`
	}
	handle {
		reverse_proxy {upstream}
	}
`)
}

// getDjango sends a GET with the sessionid cookie ("" for none).
func getDjango(t *testing.T, url, cookie string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", django.DefaultCookieName+"="+cookie)
	}
	return do(t, req)
}

// djangoCookie returns the sessionid cookie a response sets, failing the
// test unless there is exactly one (and no "session" cookie).
func djangoCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	var found []*http.Cookie
	for _, c := range resp.Cookies() {
		switch c.Name {
		case django.DefaultCookieName:
			found = append(found, c)
		case sessioncore.DefaultCookieName:
			t.Errorf("a %q cookie: %q", c.Name, resp.Header.Values("Set-Cookie"))
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one sessionid Set-Cookie, got %q", resp.Header.Values("Set-Cookie"))
	}
	return found[0]
}

// askDjango returns the session as the Django app's /django/whoami sees it:
// its JSON, as Django's serializer writes it.
func askDjango(t *testing.T, gw *gateway, cookie string) string {
	t.Helper()
	resp, body := getDjango(t, gw.URL+"/django/whoami", cookie)
	if resp.StatusCode != 200 {
		t.Fatalf("whoami: %d %s", resp.StatusCode, body)
	}
	return body
}

// openedJSON returns the JSON in a django cookie, opened with the current
// secret only.
func openedJSON(t *testing.T, value string) string {
	t.Helper()
	codec, _ := django.New([]byte(djangoSecret))
	p, _, err := codec.Decode(django.DefaultCookieName, value)
	if err != nil {
		t.Fatalf("the cookie does not open with the current secret: %v", err)
	}
	return string(p.JSON)
}

// sameMembers reports whether two JSON objects have the same members, each
// value the same JSON text, in whatever order.
func sameMembers(t *testing.T, a, b string) bool {
	t.Helper()
	var ma, mb map[string]json.RawMessage
	if err := json.Unmarshal([]byte(a), &ma); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &mb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if len(ma) != len(mb) {
		return false
	}
	for k, v := range ma {
		if string(mb[k]) != string(v) {
			return false
		}
	}
	return true
}

// djangoLogin is the session /django/login writes, as Django writes it.
const djangoLogin = `{"user":"alice","ratio":2.0,"big":18446744073709551617,"name":"Zo\u00eb"}`

func TestDjangoSharesTheSessionWithOtherApps(t *testing.T) {
	gw := startDjangoGateway(t)

	// Django logs the user in; the client gets one sessionid cookie, kept
	// as long as Django keeps it.
	resp, body := getDjango(t, gw.URL+"/django/login?user=alice", "")
	if body != "logged in" {
		t.Fatalf("login: %s", body)
	}
	login := djangoCookie(t, resp)
	if login.MaxAge != int(djangoLifetime/time.Second) {
		t.Errorf("login cookie: %q", resp.Header.Values("Set-Cookie"))
	}
	// The gateway took Django's cookie and wrote it again (keys sorted, as
	// it keeps every session): Django reads each value as it wrote it.
	if got := askDjango(t, gw, login.Value); !sameMembers(t, got, djangoLogin) {
		t.Errorf("django saw %s, wrote %s", got, djangoLogin)
	}

	// A non-Django route sees the session.
	_, seen := getDjango(t, gw.URL+"/me", login.Value)
	var m map[string]any
	if err := json.Unmarshal([]byte(seen), &m); err != nil || m["user"] != "alice" || m["name"] != "Zoë" || len(m) != 4 {
		t.Errorf("the other app saw %s", seen)
	}
	// Reading it changes nothing: no cookie is written (as Django, which
	// saves only a modified session).
	resp, _ = getDjango(t, gw.URL+"/me", login.Value)
	noSessionCookie(t, resp)

	// It changes the session through the header protocol...
	resp, _ = getDjango(t, gw.URL+"/cart", login.Value)
	withCart := djangoCookie(t, resp)
	if withCart.MaxAge != int(djangoLifetime/time.Second) {
		t.Errorf("cart cookie: %q", resp.Header.Values("Set-Cookie"))
	}
	// ...signed with the current key, the values it did not touch written
	// as Django wrote them, byte for byte...
	stored := openedJSON(t, withCart.Value)
	for _, v := range []string{`"ratio":2.0`, `"big":18446744073709551617`, `"name":"Zo\u00eb"`, `"user":"alice"`, `"cart":[1,2]`} {
		if !strings.Contains(stored, v) {
			t.Errorf("the gateway's cookie holds %s, without %s", stored, v)
		}
	}
	// ...and Django reads the change, its own values intact.
	var saw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(askDjango(t, gw, withCart.Value)), &saw); err != nil {
		t.Fatal(err)
	}
	if string(saw["cart"]) != "[1,2]" || string(saw["ratio"]) != "2.0" || string(saw["big"]) != "18446744073709551617" ||
		string(saw["name"]) != `"Zo\u00eb"` || string(saw["user"]) != `"alice"` {
		t.Errorf("django saw %s", saw)
	}

	// Django flushes the session: one deleting cookie.
	resp, _ = getDjango(t, gw.URL+"/django/logout", withCart.Value)
	if c := djangoCookie(t, resp); c.MaxAge != -1 {
		t.Errorf("logout: %q", resp.Header.Values("Set-Cookie"))
	}
}

// TestDjangoExpiryIsDjangos: the cookie the gateway writes lasts as the
// session's _session_expiry says, as Django's would.
func TestDjangoExpiryIsDjangos(t *testing.T) {
	gw := startDjangoGateway(t)
	resp, _ := getDjango(t, gw.URL+"/django/login?user=alice", "")
	login := djangoCookie(t, resp)
	for _, c := range []struct {
		seconds string
		maxAge  int // as net/http reads it: 0 for none
	}{{"0", 0}, {"300", 300}} {
		resp, _ := getDjango(t, gw.URL+"/django/remember?seconds="+c.seconds, login.Value)
		remembered := djangoCookie(t, resp)
		if remembered.MaxAge != c.maxAge || (c.maxAge == 0) != remembered.Expires.IsZero() {
			t.Errorf("set_expiry(%s): %q", c.seconds, resp.Header.Values("Set-Cookie"))
		}
		// A change from another app keeps Django's expiry.
		resp, _ = getDjango(t, gw.URL+"/cart", remembered.Value)
		changed := djangoCookie(t, resp)
		if changed.MaxAge != c.maxAge || (c.maxAge == 0) != changed.Expires.IsZero() {
			t.Errorf("set_expiry(%s), then a change: %q", c.seconds, resp.Header.Values("Set-Cookie"))
		}
		if got := askDjango(t, gw, changed.Value); !strings.Contains(got, `"_session_expiry":`+c.seconds) || !strings.Contains(got, `"cart":[1,2]`) {
			t.Errorf("django saw %s", got)
		}
	}
}

func TestDjangoFallbackKeyCookieIsReissuedUnderCurrentKey(t *testing.T) {
	gw := startDjangoGateway(t)
	old, _ := django.New([]byte(djangoOldSecret))
	value, err := old.Encode(django.DefaultCookieName, sessioncore.Payload{JSON: []byte(`{"user":"bob"}`), Issued: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if got := askDjango(t, gw, value); got != `{"user":"bob"}` {
		t.Errorf("django did not open the fallback cookie: %s", got)
	}
	if _, seen := getDjango(t, gw.URL+"/me", value); seen != `{"user":"bob"}` {
		t.Errorf("the gateway did not open the fallback cookie: %s", seen)
	}
	resp, _ := getDjango(t, gw.URL+"/cart", value)
	reissued := djangoCookie(t, resp)
	if got := openedJSON(t, reissued.Value); got != `{"cart":[1,2],"user":"bob"}` && got != `{"user":"bob","cart":[1,2]}` {
		t.Errorf("reissued %s", got)
	}
	if got := askDjango(t, gw, reissued.Value); !strings.Contains(got, `"user":"bob"`) || !strings.Contains(got, `"cart":[1,2]`) {
		t.Errorf("django saw %s", got)
	}
}

// TestDjangoRejectsWhatDjangoRejects: tampered, expired and foreign
// cookies open on neither side; the Django app never gets a cookie the
// gateway turned down.
func TestDjangoRejectsWhatDjangoRejects(t *testing.T) {
	gw := startDjangoGateway(t)
	current, _ := django.New([]byte(djangoSecret))
	alien, _ := django.New([]byte("some-other-django-secret"))
	seal := func(c *django.Codec, json string, issued time.Time) string {
		v, err := c.Encode(django.DefaultCookieName, sessioncore.Payload{JSON: []byte(json), Issued: issued})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	valid := seal(current, `{"user":"mallory"}`, time.Now())
	for name, value := range map[string]string{
		"tampered":  strings.Replace(valid, "bWFsbG9yeS", "bWFsbG9yeT", 1),
		"expired":   seal(current, `{"user":"mallory"}`, time.Now().Add(-djangoLifetime-time.Minute)),
		"wrong key": seal(alien, `{"user":"mallory"}`, time.Now()),
	} {
		if value == valid {
			t.Fatalf("%s: not changed", name)
		}
		if got := askDjango(t, gw, value); got != `{}` {
			t.Errorf("%s: django saw %s", name, got)
		}
		if _, seen := getDjango(t, gw.URL+"/me", value); seen != `{}` {
			t.Errorf("%s: the gateway opened %s", name, seen)
		}
	}
	if got := askDjango(t, gw, valid); got != `{"user":"mallory"}` {
		t.Errorf("a valid cookie did not reach django: %s", got)
	}
}
