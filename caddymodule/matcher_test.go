package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/sessiongate/caddy-session/sessioncore"
)

func testSession(t *testing.T, values map[string]string) *sessioncore.Session {
	t.Helper()
	s := sessioncore.NewSession()
	for k, v := range values {
		if err := s.Set(k, json.RawMessage(v)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// requestWithSession returns a request prepared as Caddy's server does,
// carrying s as the session handler leaves it (none when s is nil).
func requestWithSession(s *sessioncore.Session) *http.Request {
	repl := caddy.NewReplacer()
	r := caddyhttp.PrepareRequest(httptest.NewRequest("GET", "/", nil), repl, httptest.NewRecorder(), &caddyhttp.Server{})
	if s != nil {
		publishSession(r, repl, &requestSession{}, s)
	}
	return r
}

func TestMatchSession(t *testing.T) {
	var m MatchSession
	d := caddyfile.NewTestDispenser("session role admin editor\nsession user")
	if err := m.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || len(m["role"]) != 2 || len(m["user"]) != 0 {
		t.Fatalf("parsed %v", m)
	}
	tests := []struct {
		name    string
		session *sessioncore.Session
		want    bool
	}{
		{"admin", testSession(t, map[string]string{"user": `"alice"`, "role": `"admin"`}), true},
		{"editor in a list", testSession(t, map[string]string{"user": `"bob"`, "role": `["viewer","editor"]`}), true},
		{"wrong role", testSession(t, map[string]string{"user": `"carol"`, "role": `"viewer"`}), false},
		{"no user", testSession(t, map[string]string{"role": `"admin"`}), false},
		{"empty user", testSession(t, map[string]string{"user": `""`, "role": `"admin"`}), false},
		{"no session handler", nil, false},
		{"null session", sessioncore.NewNullSession(nil), false},
	}
	for _, tt := range tests {
		if got, err := m.MatchWithError(requestWithSession(tt.session)); got != tt.want || err != nil {
			t.Errorf("%s: %v %v, want %v", tt.name, got, err, tt.want)
		}
	}
	if err := (MatchSession{}).Validate(); err == nil {
		t.Error("an empty matcher validated")
	}
	if err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser("session")); err == nil {
		t.Error("a matcher without a key parsed")
	}
}

func TestMatchSessionInCEL(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	expr := &caddyhttp.MatchExpression{Expr: "session('role', 'admin') && session('user')"}
	if err := expr.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	admin := requestWithSession(testSession(t, map[string]string{"user": `"alice"`, "role": `"admin"`}))
	if ok, err := expr.MatchWithError(admin); !ok || err != nil {
		t.Errorf("admin: %v %v", ok, err)
	}
	viewer := requestWithSession(testSession(t, map[string]string{"user": `"bob"`, "role": `"viewer"`}))
	if ok, _ := expr.MatchWithError(viewer); ok {
		t.Error("viewer matched")
	}
}
