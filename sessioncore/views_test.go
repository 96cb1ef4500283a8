package sessioncore

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestViewSendsOnlyTheRoutesKeys(t *testing.T) {
	a, _ := NewAsserter(AssertionConfig{Key: newEd25519(t), Audience: "api"})
	for _, tc := range []struct {
		view View
		want string
	}{
		{View{Send: []string{"user", "missing"}}, `{"user":"alice"}`},
		{View{Hide: []string{"cart", "role"}}, `{"user":"alice"}`},
		{View{}, `{"cart":[1],"role":"admin","user":"alice"}`},
	} {
		g, manager := newTestGateway(t, nil, GatewayConfig{View: &tc.view, Assertion: a, AssertionHeader: "X-Session-Assertion",
			Forward: []ForwardHeader{{Key: "role", Header: "X-Role"}}})
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", "session="+issue(t, manager, `{"user":"alice","role":"admin","cart":[1]}`))
		arrival := g.Arrive(r, http.Header{})
		if got := r.Header.Get("X-Session"); got != tc.want {
			t.Errorf("%+v: X-Session %s, want %s", tc.view, got, tc.want)
		}
		if r.Header.Get("X-Role") != "admin" || !arrival.Session.Has("role") {
			t.Errorf("%+v: forward and the session itself must see the whole session", tc.view)
		}
		claims, err := verify(t, a.JWKS(), r.Header.Get("X-Session-Assertion"), "api", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := jsonText(claims["session"]); got != tc.want {
			t.Errorf("%+v: the assertion's session %s, want %s", tc.view, got, tc.want)
		}
	}
	if _, err := NewGateway(nil, GatewayConfig{View: &View{Send: []string{"a"}, Hide: []string{"b"}}}); err == nil {
		t.Error("send and hide together accepted")
	}
}

func TestWriteRules(t *testing.T) {
	const start = `{"role":"user","user":"alice"}`
	for _, tc := range []struct {
		name     string
		rules    WriteRules
		upstream []string
		refused  bool
		want     string
	}{
		{"writable key", WriteRules{Writable: []string{"cart"}}, []string{"X-Session-Update", `{"cart":[1]}`}, false, `{"cart":[1],"role":"user","user":"alice"}`},
		{"readonly key set", WriteRules{Writable: []string{"cart"}}, []string{"X-Session-Update", `{"role":"admin"}`}, true, start},
		{"readonly key removed", WriteRules{Readonly: []string{"role"}}, []string{"X-Session-Update", `{"role":null}`}, true, start},
		{"readonly key added", WriteRules{Readonly: []string{"admin"}}, []string{"X-Session-Update", `{"admin":true}`}, true, start},
		{"readonly key unchanged", WriteRules{Readonly: []string{"role"}}, []string{"X-Session-Update", `{"role":"user","cart":[2]}`}, false, `{"cart":[2],"role":"user","user":"alice"}`},
		{"replace carries protected keys over", WriteRules{Readonly: []string{"role", "user"}}, []string{"X-Session-Replace", `{"role":"admin","cart":[3]}`}, false, `{"cart":[3],"role":"user","user":"alice"}`},
		{"no rules", WriteRules{}, []string{"X-Session-Update", `{"role":"admin"}`}, false, `{"role":"admin","user":"alice"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, manager := newTestGateway(t, nil, GatewayConfig{WriteRules: &tc.rules})
			cookie := "session=" + issue(t, manager, start)
			header, d := roundTrip(t, g, cookie, tc.upstream...)
			if tc.refused {
				if d.Status != http.StatusBadGateway || !d.Rejected || !errors.Is(d.Refused, ErrProtectedKey) || len(header["Set-Cookie"]) != 0 {
					t.Fatalf("Depart = %+v", d)
				}
				return
			}
			if d.Refused != nil {
				t.Fatalf("Depart = %+v", d)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Cookie", (&http.Response{Header: header}).Cookies()[0].String())
			g.Arrive(r, http.Header{})
			if got := r.Header.Get("X-Session"); got != tc.want {
				t.Errorf("session %s, want %s", got, tc.want)
			}
		})
	}
}

// jsonText returns v as compact JSON.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// The review's cases: a no-op patch on a protected object whose members
// are not sorted passes; a replacement keeps the keys the view hides; a
// view cannot be had with the session cookie forwarded; a legacy app's own
// cookie keeps the protected keys.
func TestViewsAndRulesHoldAtTheirEdges(t *testing.T) {
	codec, _ := NewSecureCookieCodec(testSecret)
	manager, err := NewManager(DefaultConfig(), codec)
	must(t, err)
	cookie := "session=" + issue(t, manager, `{"user":{"name":"alice","id":7},"secret":"s3","cart":[]}`)

	ro, err := NewGateway(manager, GatewayConfig{WriteRules: &WriteRules{Readonly: []string{"user"}}})
	must(t, err)
	if _, d := roundTrip(t, ro, cookie, "X-Session-Update", `{"user":{"name":"alice","id":7}}`); d.Refused != nil {
		t.Errorf("a patch that changes nothing was refused: %v", d.Refused)
	}
	if _, d := roundTrip(t, ro, cookie, "X-Session-Update", `{"user":{"id":8}}`); d.Refused == nil {
		t.Error("a change to a read-only key passed")
	}

	hidden, err := NewGateway(manager, GatewayConfig{View: &View{Hide: []string{"secret"}}})
	must(t, err)
	header, d := roundTrip(t, hidden, cookie, "X-Session-Replace", `{"cart":[1]}`)
	if d.Refused != nil {
		t.Fatal(d.Refused)
	}
	if s, _ := manager.Open(requestWithCookie("session", cookieValue(t, header, "session"))); s.String() != `{"cart":[1],"secret":"s3"}` {
		t.Errorf("after a replace on a route that hides secret: %s", s)
	}

	if _, err := NewGateway(manager, GatewayConfig{View: &View{Hide: []string{"secret"}}, ForwardCookie: true}); err == nil {
		t.Error("a view with the cookie forwarded was accepted")
	}

	flask, _ := NewFlaskCodec(testSecret)
	legacy, _ := NewManager(DefaultConfig(), flask)
	sidCfg := DefaultConfig()
	sidCfg.CookieName = "sid"
	main, _ := NewManager(sidCfg, codec)
	g, err := NewGateway(main, GatewayConfig{WriteRules: &WriteRules{Readonly: []string{"role"}}, Migrations: []Migration{{Legacy: legacy, KeepLegacy: true}}})
	must(t, err)
	own := "sid=" + issue(t, main, `{"user":"alice","role":"user"}`)
	forged := issue(t, legacy, `{"user":"alice","role":"admin"}`)
	header, d = roundTrip(t, g, own, "Set-Cookie", "session="+forged+"; Path=/")
	if d.Refused != nil {
		t.Fatal(d.Refused)
	}
	if s, _ := main.Open(requestWithCookie("sid", cookieValue(t, http.Header{"Set-Cookie": {header.Values("Set-Cookie")[0]}}, "sid"))); s.String() != `{"role":"user","user":"alice"}` {
		t.Errorf("a legacy app's cookie changed a read-only key: %s", s)
	}
}
