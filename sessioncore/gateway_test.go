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
