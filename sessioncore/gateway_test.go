package sessioncore

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// newTestGateway returns a gateway over a Manager with the default
// config and codec, or the one given.
func newTestGateway(t *testing.T, codec Codec, c GatewayConfig) (*Gateway, *Manager) {
	t.Helper()
	if codec == nil {
		codec, _ = NewSecureCookieCodec(testSecret)
	}
	manager, err := NewManager(DefaultConfig(), codec)
	must(t, err)
	g, err := NewGateway(manager, c)
	must(t, err)
	return g, manager
}

// roundTrip runs one request with cookie through g, its upstream answering
// with the response headers upstream (name, value pairs).
func roundTrip(t *testing.T, g *Gateway, cookie string, upstream ...string) (http.Header, Departure) {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	header := http.Header{}
	a := g.Arrive(r, header)
	if a.Refused != nil {
		t.Fatalf("Arrive refused the request: %v", a.Refused)
	}
	for i := 0; i+1 < len(upstream); i += 2 {
		header.Add(upstream[i], upstream[i+1])
	}
	return header, g.Depart(context.Background(), a.Session, header)
}

// Flask's order: the upstream's own session cookie is the new state, and
// the mutation headers apply on top of it; the client gets one cookie.
func TestDepartAdoptsTheUpstreamCookieThenAppliesTheMutation(t *testing.T) {
	codec, _ := NewFlaskCodec(testSecret)
	g, manager := newTestGateway(t, codec, GatewayConfig{ForwardCookie: true})
	flaskCookie := issue(t, manager, `{"user":"alice","cart":[1]}`)

	header, d := roundTrip(t, g, "",
		"Set-Cookie", "session="+flaskCookie+"; HttpOnly; Path=/",
		"Set-Cookie", "lang=en; Path=/",
		"X-Session-Update", `{"cart":null,"seen":true}`)
	if d.Refused != nil || d.Action != CookieSet || !d.Applied {
		t.Fatalf("Depart = %+v", d)
	}
	var sessionLines []string
	for _, line := range header.Values("Set-Cookie") {
		if strings.HasPrefix(line, "session=") {
			sessionLines = append(sessionLines, line)
		}
	}
	if len(sessionLines) != 1 || !strings.Contains(strings.Join(header.Values("Set-Cookie"), "\n"), "lang=en") {
		t.Fatalf("Set-Cookie %q: want the app's other cookie and one session cookie", header.Values("Set-Cookie"))
	}
	value := strings.TrimPrefix(strings.SplitN(sessionLines[0], ";", 2)[0], "session=")
	if s, _ := manager.Open(requestWithCookie("session", value)); s.String() != `{"seen":true,"user":"alice"}` {
		t.Errorf("the session is %s, want the app's cookie with the mutation on top", s)
	}
	if header.Get("Cache-Control") != "private" || header.Get("Vary") != "Cookie" {
		t.Errorf("Cache-Control %q, Vary %q", header.Get("Cache-Control"), header.Get("Vary"))
	}
}

func TestDepartRefusals(t *testing.T) {
	g, manager := newTestGateway(t, nil, GatewayConfig{})
	valid := "session=" + issue(t, manager, `{"user":"alice"}`)
	for _, tc := range []struct {
		name     string
		upstream []string
		status   int
		rejected bool
	}{
		{"malformed mutation", []string{"X-Session-Update", "nope"}, http.StatusBadGateway, true},
		{"the upstream's own cookie does not open", []string{"Set-Cookie", "session=forged"}, http.StatusBadGateway, true},
		{"a session over the cookie budget", []string{"X-Session-Update", `{"blob":"` + strings.Repeat("x", 5000) + `"}`}, http.StatusBadGateway, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header, d := roundTrip(t, g, valid, tc.upstream...)
			if d.Refused == nil || d.Status != tc.status || d.Rejected != tc.rejected || d.Reason == "" {
				t.Fatalf("Depart = %+v", d)
			}
			for name := range header {
				if g.Owns(name) {
					t.Errorf("%s left in the response", name)
				}
			}
		})
	}
}

func TestArriveStripsBeforeAnythingElse(t *testing.T) {
	g, _ := newTestGateway(t, nil, GatewayConfig{
		Forward:     []ForwardHeader{{Key: "user", Header: "X-Remote-User"}},
		CrossOrigin: http.NewCrossOriginProtection(),
	})
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.Header.Set("X_Session", `{"user":"admin"}`)
	r.Header.Set("X.Remote.User", "admin")
	r.Header.Set("Connection", "X-Session, keep-alive")
	a := g.Arrive(r, http.Header{})
	if a.Refused == nil || a.Status != http.StatusForbidden || a.Session != nil {
		t.Fatalf("a cross-site POST: %+v", a)
	}
	if len(r.Header.Values("X_Session"))+len(r.Header.Values("X.Remote.User")) != 0 || r.Header.Get("Connection") != "keep-alive" {
		t.Errorf("spoofed headers survived a refusal: %v", r.Header)
	}
}

// A store that cannot be read refuses the request (fail closed) or passes
// it on with a null session that the response varies by (fail open).
func TestArriveWithTheStoreDown(t *testing.T) {
	codec, _ := NewSecureCookieCodec(testSecret)
	manager, _ := NewManager(DefaultConfig(), codec, WithStore(failingStore{}))
	value, _ := codec.Encode("session", Payload{JSON: []byte(`{"sid":"` + strings.Repeat("A", 43) + `"}`), Issued: testEpoch})
	for _, failOpen := range []bool{false, true} {
		g, _ := NewGateway(manager, GatewayConfig{FailOpen: failOpen})
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", "session="+value)
		response := http.Header{}
		a := g.Arrive(r, response)
		switch {
		case !failOpen && (a.Status != http.StatusServiceUnavailable || !errors.Is(a.Refused, ErrStore)):
			t.Errorf("fail closed: %+v", a)
		case failOpen && (a.Refused != nil || r.Header.Get("X-Session-Status") != StatusUnavailable || response.Get("Vary") != "Cookie"):
			t.Errorf("fail open: %+v, request %v, response %v", a, r.Header, response)
		}
	}
}

func TestNewGatewayRefusesForwardHeaders(t *testing.T) {
	codec, _ := NewSecureCookieCodec(testSecret)
	manager, _ := NewManager(DefaultConfig(), codec)
	for _, tc := range []struct {
		name    string
		forward []ForwardHeader
		errHas  string
	}{
		{"the cookie header", []ForwardHeader{{"user", "Cookie"}}, "reserved"},
		{"Host", []ForwardHeader{{"user", "host"}}, "reserved"},
		{"a hop-by-hop header", []ForwardHeader{{"user", "Connection"}}, "reserved"},
		{"a spelling of Keep-Alive", []ForwardHeader{{"user", "keep_alive"}}, "reserved"},
		{"the session header", []ForwardHeader{{"user", "X-Session"}}, "session's own headers"},
		{"a header of the protocol", []ForwardHeader{{"user", "X-Session-User"}}, "session's own headers"},
		{"an invalid name", []ForwardHeader{{"user", "X User"}}, "not a valid header name"},
		{"an empty key", []ForwardHeader{{"", "X-User"}}, "key is empty"},
		{"a header twice, spelled two ways", []ForwardHeader{{"user", "X-User"}, {"role", "x_user"}}, "given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewGateway(manager, GatewayConfig{Forward: tc.forward})
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("err = %v, want it to say %q", err, tc.errHas)
			}
		})
	}
}

// flaskCookie returns a Flask session cookie value for values, sealed now.
func flaskCookie(t *testing.T, values string) string {
	t.Helper()
	codec, _ := NewFlaskCodec(testSecret)
	legacy, err := NewManager(DefaultConfig(), codec)
	must(t, err)
	return issue(t, legacy, values)
}

// newMigratingGateway returns a securecookie gateway (cookie "sid") that
// carries sessions over from Flask's cookie ("session").
func newMigratingGateway(t *testing.T, keepLegacy bool) *Gateway {
	t.Helper()
	codec, _ := NewSecureCookieCodec(testSecret)
	cfg := DefaultConfig()
	cfg.CookieName = "sid"
	manager, err := NewManager(cfg, codec)
	must(t, err)
	flask, _ := NewFlaskCodec(testSecret)
	legacy, err := NewManager(DefaultConfig(), flask)
	must(t, err)
	g, err := NewGateway(manager, GatewayConfig{Migrations: []Migration{{Legacy: legacy, KeepLegacy: keepLegacy}}})
	must(t, err)
	return g
}

// setCookies returns the cookies header sets, name to value ("" for a
// deletion).
func setCookies(t *testing.T, header http.Header) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		must(t, err)
		out[c.Name] = c.Value
	}
	return out
}

// A user logged in under the legacy format stays logged in: the session is
// carried over, written in the gateway's format, and the legacy cookie goes.
func TestMigrationCarriesTheSessionOver(t *testing.T) {
	g := newMigratingGateway(t, false)
	legacy := flaskCookie(t, `{"user":"alice","_flashes":[{" t":["message","hi"]}]}`)

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "session="+legacy+"; lang=en")
	header := http.Header{}
	a := g.Arrive(r, header)
	if a.Outcome != OutcomeMigrated || r.Header.Get("X-Session") != `{"_flashes":[["message","hi"]],"user":"alice"}` {
		t.Fatalf("Arrive: %s, X-Session %s", a.Outcome, r.Header.Get("X-Session"))
	}
	if got := r.Header.Get("Cookie"); got != "lang=en" {
		t.Errorf("the upstream got Cookie %q: the legacy cookie must not reach it", got)
	}
	d := g.Depart(context.Background(), a.Session, header)
	cookies := setCookies(t, header)
	if d.Refused != nil || cookies["sid"] == "" || cookies["session"] != "" || len(cookies) != 2 {
		t.Fatalf("Depart %+v: Set-Cookie %q; want sid set and session deleted", d, header.Values("Set-Cookie"))
	}

	// The next request, with the new cookie only, is the same user.
	header2, _ := roundTrip(t, g, "sid="+cookies["sid"])
	if len(header2.Values("Set-Cookie")) != 0 {
		t.Errorf("the migrated session was written again: %q", header2.Values("Set-Cookie"))
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "sid="+cookies["sid"])
	if a := g.Arrive(r, http.Header{}); a.Outcome != OutcomeValid || r.Header.Get("X-Session") != `{"_flashes":[["message","hi"]],"user":"alice"}` {
		t.Errorf("after the move: %s %s", a.Outcome, r.Header.Get("X-Session"))
	}

	// A forged legacy cookie carries nothing over, and is deleted.
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "session=forged")
	header = http.Header{}
	if a := g.Arrive(r, header); a.Outcome == OutcomeMigrated || r.Header.Get("X-Session") != "{}" {
		t.Errorf("a forged legacy cookie: %s %s", a.Outcome, r.Header.Get("X-Session"))
	}
}

// With keep_legacy, the legacy app still runs: it gets its cookie, what it
// sets is adopted, and its cookie is written alongside in step.
func TestMigrationKeepsTheLegacyCookieInStep(t *testing.T) {
	g := newMigratingGateway(t, true)
	legacy := flaskCookie(t, `{"user":"alice"}`)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "session="+legacy)
	header := http.Header{}
	a := g.Arrive(r, header)
	if !strings.HasPrefix(r.Header.Get("Cookie"), "session="+legacy) {
		t.Errorf("the legacy app did not get its cookie: %q", r.Header.Get("Cookie"))
	}
	// The legacy app changes its own cookie; another upstream's mutation
	// applies on top.
	changed := flaskCookie(t, `{"user":"alice","cart":[1]}`)
	header.Add("Set-Cookie", "session="+changed+"; HttpOnly; Path=/")
	header.Set("X-Session-Update", `{"seen":true}`)
	d := g.Depart(context.Background(), a.Session, header)
	cookies := setCookies(t, header)
	if d.Refused != nil || cookies["sid"] == "" || cookies["session"] == "" {
		t.Fatalf("Depart %+v: Set-Cookie %q", d, header.Values("Set-Cookie"))
	}
	codec, _ := NewFlaskCodec(testSecret)
	flask, _ := NewManager(DefaultConfig(), codec)
	if s, outcome := flask.Open(requestWithCookie("session", cookies["session"])); outcome != OutcomeValid || s.String() != `{"cart":[1],"seen":true,"user":"alice"}` {
		t.Errorf("the legacy cookie written alongside: %s %s", outcome, s)
	}
}

// OnOpen sees the open session before anything of it goes upstream, and
// sets its own headers, which a client can never send.
func TestOnOpenAndOwnHeaders(t *testing.T) {
	var opened []string
	g, manager := newTestGateway(t, nil, GatewayConfig{
		OwnHeaders: []string{"Authorization"},
		OnOpen: func(r *http.Request, s *Session) {
			opened = append(opened, s.String())
			if user, ok := s.Text("user"); ok {
				r.Header.Set("Authorization", "Bearer token-of-"+user)
			}
			_ = s.Set("seen", []byte("true")) // what it changes is what the upstream sees
		},
	})
	cookie := issue(t, manager, `{"user":"alice"}`)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "session="+cookie)
	r.Header["authorization"] = []string{"Bearer forged"}
	r.Header.Set("Connection", "authorization")
	g.Arrive(r, http.Header{})
	if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer token-of-alice" {
		t.Errorf("Authorization %q", got)
	}
	if _, ok := r.Header["authorization"]; ok || strings.Contains(r.Header.Get("Connection"), "authorization") {
		t.Errorf("the client's own header survived: %v", r.Header)
	}
	if r.Header.Get("X-Session") != `{"seen":true,"user":"alice"}` || len(opened) != 1 || opened[0] != `{"user":"alice"}` {
		t.Errorf("X-Session %s after OnOpen saw %q", r.Header.Get("X-Session"), opened)
	}

	// No session: OnOpen sees an empty one, and the client's header goes.
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer forged")
	g.Arrive(r, http.Header{})
	if r.Header.Get("Authorization") != "" {
		t.Errorf("a forged Authorization reached the upstream")
	}

	for _, own := range []string{"X-Session-Token", "Bad Header"} {
		if _, err := NewGateway(manager, GatewayConfig{OwnHeaders: []string{own}}); err == nil {
			t.Errorf("own header %q accepted", own)
		}
	}
	if _, err := NewGateway(manager, GatewayConfig{OwnHeaders: []string{"X-User"}, Forward: []ForwardHeader{{Key: "user", Header: "x-user"}}}); err == nil {
		t.Error("a header both forwarded and the gateway's own was accepted")
	}
}
