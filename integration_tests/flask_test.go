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
)

// Debian's own interpreter, which has python3-flask; others may not.
const debianPython = "/usr/bin/python3"

const (
	flaskSecret    = "flask-secret-key-shared-with-the-gateway"
	flaskOldSecret = "an-older-flask-secret"
)

// requireFlask fails the test under CI=true, and skips it elsewhere, when
// Debian's python3-flask is not installed.
func requireFlask(t *testing.T) {
	t.Helper()
	if err := exec.Command(debianPython, "-c", "import flask").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-flask is required (apt-get install python3-flask): %v", err)
		}
		t.Skipf("python3-flask is not installed: %v", err)
	}
}

// startFlask runs integration_tests/flaskapp/app.py on a free loopback port.
func startFlask(t *testing.T) string {
	t.Helper()
	requireFlask(t)
	port := freePort(t)
	cmd := exec.Command(debianPython, "flaskapp/app.py", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), "FLASK_SECRET_KEY="+flaskSecret, "FLASK_SECRET_KEY_FALLBACKS="+flaskOldSecret, "PYTHONDONTWRITEBYTECODE=1")
	return startApp(t, "flask", cmd, port, 15*time.Second)
}

// startFlaskGateway puts the gateway, with the flask codec, in front of a
// real Flask app (/flask/*) and a non-Flask app (everything else).
func startFlaskGateway(t *testing.T) (*gateway, *upstream) { return startFlaskGatewayWith(t, "") }

// startFlaskGatewayWith is startFlaskGateway with extra session settings.
func startFlaskGatewayWith(t *testing.T, extra string) (*gateway, *upstream) {
	t.Helper()
	flaskAddr := startFlask(t)
	other := startUpstream(t, map[string]http.HandlerFunc{
		"/me":   echoSession,
		"/cart": setsSession("X-Session-Update", `{"cart":[1,2]}`),
	})
	t.Setenv("IT_FLASK_SECRET", flaskSecret)
	t.Setenv("IT_FLASK_OLD", flaskOldSecret)
	gw := startGateway(t, other.Addr(), `
	session {
		codec flask
		secret {env.IT_FLASK_SECRET}
		secret_fallbacks {env.IT_FLASK_OLD}
		`+extra+`
	}
	handle /flask/* {
		reverse_proxy `+flaskAddr+`
	}
	handle {
		reverse_proxy {upstream}
	}
`)
	return gw, other
}

// whoami is what the Flask app's /flask/whoami answers.
type whoami struct {
	User string   `json:"user"`
	Cart []int    `json:"cart"`
	Keys []string `json:"keys"`
}

func askFlask(t *testing.T, gw *gateway, cookie string) whoami {
	t.Helper()
	resp, body := get(t, gw.URL+"/flask/whoami", cookie)
	if resp.StatusCode != 200 {
		t.Fatalf("whoami: %d %s", resp.StatusCode, body)
	}
	var w whoami
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatalf("whoami %q: %v", body, err)
	}
	return w
}

func TestFlaskSharesTheSessionWithOtherApps(t *testing.T) {
	gw, _ := startFlaskGateway(t)

	// Flask logs the user in and sets the cookie itself; the client gets
	// exactly one session cookie.
	resp, body := get(t, gw.URL+"/flask/login?user=alice", "")
	if body != "logged in" {
		t.Fatalf("login: %s", body)
	}
	login := sessionCookie(t, resp)

	// A non-Flask route sees the session, tagged values as plain JSON.
	if _, seen := get(t, gw.URL+"/me", login.Value); seen != `{"_flashes":[["message","welcome"]],"user":"alice"}` {
		t.Errorf("the other app saw %s", seen)
	}

	// It changes the session through the header protocol...
	resp, _ = get(t, gw.URL+"/cart", login.Value)
	withCart := sessionCookie(t, resp)

	// ...and Flask reads the change, with its flashes intact.
	if w := askFlask(t, gw, withCart.Value); w.User != "alice" || fmt.Sprint(w.Cart) != "[1 2]" {
		t.Errorf("flask saw %+v", w)
	}
	resp, body = get(t, gw.URL+"/flask/flashes", withCart.Value)
	if strings.TrimSpace(body) != `[["message","welcome"]]` {
		t.Errorf("flashes after the round trip: %s", body)
	}
	// Consuming the flashes rewrote the cookie through Flask, then the gateway.
	afterFlashes := sessionCookie(t, resp)
	if _, seen := get(t, gw.URL+"/me", afterFlashes.Value); seen != `{"cart":[1,2],"user":"alice"}` {
		t.Errorf("after reading flashes the other app saw %s", seen)
	}

	// Flask clears the session: one deleting cookie.
	resp, _ = get(t, gw.URL+"/flask/logout", afterFlashes.Value)
	if c := sessionCookie(t, resp); c.MaxAge != -1 {
		t.Errorf("logout: %q", resp.Header.Values("Set-Cookie"))
	}
}

func TestFlaskFallbackKeyCookieIsReissuedUnderCurrentKey(t *testing.T) {
	gw, _ := startFlaskGateway(t)
	old, _ := sessioncore.NewFlaskCodec([]byte(flaskOldSecret))
	value, err := old.Encode("session", sessioncore.Payload{JSON: []byte(`{"user":"bob"}`), Issued: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if w := askFlask(t, gw, value); w.User != "bob" {
		t.Errorf("flask did not open the fallback cookie: %+v", w)
	}
	if _, seen := get(t, gw.URL+"/me", value); seen != `{"user":"bob"}` {
		t.Errorf("the gateway did not open the fallback cookie: %s", seen)
	}

	resp, _ := get(t, gw.URL+"/cart", value)
	reissued := sessionCookie(t, resp)
	current, _ := sessioncore.NewFlaskCodec([]byte(flaskSecret))
	if _, _, err := current.Decode("session", reissued.Value); err != nil {
		t.Errorf("the reissued cookie is not signed with the current key: %v", err)
	}
	if w := askFlask(t, gw, reissued.Value); w.User != "bob" || fmt.Sprint(w.Cart) != "[1 2]" {
		t.Errorf("flask saw %+v", w)
	}
}

// TestFlaskNeverSeesACookieTheGatewayRejected: the gateway is stricter than
// Flask here (an idle timeout); the Flask app must not get the cookie the
// gateway turned down, or it would log the user in regardless.
func TestFlaskNeverSeesACookieTheGatewayRejected(t *testing.T) {
	gw, _ := startFlaskGatewayWith(t, "idle_timeout 10m")
	codec, _ := sessioncore.NewFlaskCodec([]byte(flaskSecret))
	idle, err := codec.Encode("session", sessioncore.Payload{JSON: []byte(`{"user":"mallory"}`), Issued: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if w := askFlask(t, gw, idle); w.User != "" {
		t.Errorf("the Flask app saw a cookie the gateway rejected: %+v", w)
	}
	fresh, _ := codec.Encode("session", sessioncore.Payload{JSON: []byte(`{"user":"alice"}`), Issued: time.Now()})
	if w := askFlask(t, gw, fresh); w.User != "alice" {
		t.Errorf("a valid cookie did not reach the Flask app: %+v", w)
	}
	// Nor can the rejected cookie be slipped past the gateway where
	// Werkzeug reads cookies differently from it.
	for _, lines := range [][]string{
		{"session =IDLE; session=FRESH"},           // Werkzeug trims the name
		{`a="; session=FRESH; "; session=IDLE`},    // Werkzeug reads a quoted ';'
		{"a=1; \u00a0session=FRESH; session=IDLE"}, // parsers trim different blanks
		{"x=1", "session=FRESH; session=IDLE"},     // Werkzeug's server joins lines with ','
	} {
		var headers []string
		for _, line := range lines {
			line = strings.NewReplacer("IDLE", idle, "FRESH", fresh).Replace(line)
			headers = append(headers, "Cookie", line)
		}
		resp, body := get(t, gw.URL+"/flask/whoami", "", headers...)
		if resp.StatusCode != 200 || strings.Contains(body, "mallory") {
			t.Errorf("Cookie %q: the Flask app saw a cookie the gateway rejected: %d %s", lines, resp.StatusCode, body)
		}
	}
}
