package sessioncore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A session of the gateway's own format refused for its age, or a legacy
// cookie of a revoked user, never comes back through migration, keep_legacy
// or not.
func TestMigrationNeverRevivesARefusedSession(t *testing.T) {
	clock := &testClock{t: testEpoch}
	revocations := &mapRevocations{cutoffs: map[string]time.Time{}}
	codec, _ := NewSecureCookieCodec(testSecret)
	cfg := DefaultConfig()
	cfg.CookieName, cfg.IdleTimeout = "sid", 30*time.Minute
	manager, err := NewManager(cfg, codec, WithClock(clock.Now), WithRevocations(revocations, "user", 0))
	must(t, err)
	flask, _ := NewFlaskCodec(testSecret)
	legacy, err := NewManager(DefaultConfig(), flask, WithClock(clock.Now))
	must(t, err)
	g, err := NewGateway(manager, GatewayConfig{Migrations: []Migration{{Legacy: legacy, KeepLegacy: true}}})
	must(t, err)
	own := issue(t, manager, `{"user":"alice"}`)
	old := issue(t, legacy, `{"user":"alice"}`)

	arrive := func(cookie string) (Arrival, http.Header) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", cookie)
		header := http.Header{}
		a := g.Arrive(r, header)
		g.Depart(context.Background(), a.Session, header)
		return a, header
	}

	// Idle for two hours: the session's own cookie is expired, and the
	// legacy cookie beside it does not carry it over; it is deleted.
	clock.Advance(2 * time.Hour)
	a, header := arrive("sid=" + own + "; session=" + old)
	if a.Outcome != OutcomeExpired || a.Session.Len() != 0 {
		t.Errorf("an idle session came back: %s %s", a.Outcome, a.Session)
	}
	if got := setCookies(t, header); got["session"] != "" || len(got) == 0 {
		t.Errorf("the legacy cookie was not deleted: %q", header.Values("Set-Cookie"))
	}

	// Revoked after the legacy cookie was issued: not carried over.
	fresh := issue(t, legacy, `{"user":"alice"}`)
	clock.Advance(2 * time.Second)
	must(t, manager.RevokeUser(context.Background(), "alice", clock.Now()))
	if a, _ := arrive("session=" + fresh); a.Outcome == OutcomeMigrated || a.Session.Len() != 0 {
		t.Errorf("a revoked user's legacy cookie was carried over: %s %s", a.Outcome, a.Session)
	}
}
