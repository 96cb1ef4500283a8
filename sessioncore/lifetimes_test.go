package sessioncore

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLifetimesBeyondFlask(t *testing.T) {
	type step struct {
		advance time.Duration
		outcome Outcome
		reissue bool // whether the response reissues the cookie
	}
	tests := []struct {
		name   string
		change func(*Config)
		values string
		steps  []step
	}{
		{"idle timeout: used often enough, it lives on", func(c *Config) { c.IdleTimeout = time.Hour }, `{"u":1}`, []step{
			{50 * time.Minute, OutcomeValid, true},
			{50 * time.Minute, OutcomeValid, true},
			{50 * time.Minute, OutcomeValid, true},
		}},
		{"idle timeout: unused too long, it is void", func(c *Config) { c.IdleTimeout = time.Hour }, `{"u":1}`, []step{
			{61 * time.Minute, OutcomeExpired, false},
		}},
		{"refresh interval throttles the reissues", func(c *Config) { c.IdleTimeout = time.Hour; c.RefreshInterval = 10 * time.Minute }, `{"u":1}`, []step{
			{5 * time.Minute, OutcomeValid, false},
			{4 * time.Minute, OutcomeValid, false},
			{2 * time.Minute, OutcomeValid, true}, // 11 minutes after the issue
		}},
		{"refresh interval throttles permanent refreshes too", func(c *Config) { c.RefreshInterval = time.Minute }, `{"_permanent":true}`, []step{
			{30 * time.Second, OutcomeValid, false},
			{31 * time.Second, OutcomeValid, true},
		}},
		{"absolute lifetime holds whatever the refreshes", func(c *Config) { c.AbsoluteLifetime = 2 * time.Hour }, `{"_permanent":true}`, []step{
			{time.Hour, OutcomeValid, true},
			{59 * time.Minute, OutcomeValid, true},
			{2 * time.Minute, OutcomeExpired, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &testClock{t: testEpoch}
			cfg := DefaultConfig()
			tt.change(&cfg)
			manager := newTestManager(t, cfg, clock)
			cookie := issue(t, manager, tt.values)
			for i, st := range tt.steps {
				clock.Advance(st.advance)
				s, outcome := manager.Open(requestWithCookie("session", cookie))
				if outcome != st.outcome {
					t.Fatalf("step %d: outcome %s, want %s", i, outcome, st.outcome)
				}
				h := http.Header{}
				if _, err := manager.Save(context.Background(), s, h); err != nil {
					t.Fatal(err)
				}
				if got := h.Get("Set-Cookie") != ""; got != st.reissue {
					t.Fatalf("step %d: reissued = %v, want %v", i, got, st.reissue)
				}
				if st.reissue {
					cookie = cookieValue(t, h, "session")
				}
			}
		})
	}
}

func TestAbsoluteLifetimeCapsTheCookieExpiry(t *testing.T) {
	clock := &testClock{t: testEpoch}
	cfg := DefaultConfig()
	cfg.AbsoluteLifetime = 3 * time.Hour
	manager := newTestManager(t, cfg, clock)
	cookie := issue(t, manager, `{"_permanent":true}`)
	clock.Advance(time.Hour)
	s, _ := manager.Open(requestWithCookie("session", cookie))
	if expires, _ := manager.ExpirationTime(s); !expires.Equal(testEpoch.Add(3 * time.Hour)) {
		t.Errorf("expires %s, want the end of the absolute lifetime", expires)
	}
}

func TestRevokeBefore(t *testing.T) {
	clock := &testClock{t: testEpoch}
	manager := newTestManager(t, DefaultConfig(), clock)
	before := issue(t, manager, `{"u":1}`)
	clock.Advance(time.Hour)
	after := issue(t, manager, `{"u":2}`)

	cfg := DefaultConfig()
	cfg.RevokeBefore = testEpoch.Add(30 * time.Minute)
	revoking := newTestManager(t, cfg, clock)
	if s, outcome := revoking.Open(requestWithCookie("session", before)); outcome != OutcomeRevoked || s.Len() != 0 {
		t.Errorf("a session created before: %s %s", outcome, s)
	}
	if _, outcome := revoking.Open(requestWithCookie("session", after)); outcome != OutcomeValid {
		t.Errorf("a session created after: %s", outcome)
	}
	// A reissue after the instant does not save a session created before it.
	reissued, _ := manager.Open(requestWithCookie("session", before))
	_ = reissued.SetPermanent(true)
	h := http.Header{}
	_, _ = manager.Save(context.Background(), reissued, h)
	if _, outcome := revoking.Open(requestWithCookie("session", cookieValue(t, h, "session"))); outcome != OutcomeRevoked {
		t.Errorf("a reissued old session: %s", outcome)
	}
}

func TestRefreshIntervalNeverLetsASessionInUseExpire(t *testing.T) {
	clock := &testClock{t: testEpoch}
	cfg := DefaultConfig()
	cfg.IdleTimeout = 10 * time.Minute
	cfg.RefreshInterval = 9 * time.Minute
	manager := newTestManager(t, cfg, clock)
	cookie := issue(t, manager, `{"u":1}`)
	for i := range 6 { // a request every 6 minutes, for 36 minutes
		clock.Advance(6 * time.Minute)
		s, outcome := manager.Open(requestWithCookie("session", cookie))
		if outcome != OutcomeValid {
			t.Fatalf("request %d: %s", i, outcome)
		}
		h := http.Header{}
		if _, err := manager.Save(context.Background(), s, h); err != nil {
			t.Fatal(err)
		}
		if h.Get("Set-Cookie") != "" {
			cookie = cookieValue(t, h, "session")
		}
	}
	for _, bad := range []Config{
		func() Config {
			c := DefaultConfig()
			c.IdleTimeout, c.RefreshInterval = time.Minute, time.Minute
			return c
		}(),
		func() Config { c := DefaultConfig(); c.Lifetime, c.RefreshInterval = time.Hour, 2*time.Hour; return c }(),
		func() Config { c := DefaultConfig(); c.MaxCookieParts = MaxCookiePartsLimit + 1; return c }(),
	} {
		if _, err := NewManager(bad, nil); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestRenewalStartsANewAbsoluteLifetime(t *testing.T) {
	clock := &testClock{t: testEpoch}
	cfg := DefaultConfig()
	cfg.AbsoluteLifetime = 2 * time.Hour
	manager := newTestManager(t, cfg, clock)
	cookie := issue(t, manager, `{"anonymous":true}`)
	clock.Advance(90 * time.Minute)
	s, _ := manager.Open(requestWithCookie("session", cookie))
	_ = s.Renew() // a login
	h := http.Header{}
	if _, err := manager.Save(context.Background(), s, h); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour) // 2.5 h after the first visit, 1 h after the login
	if _, outcome := manager.Open(requestWithCookie("session", cookieValue(t, h, "session"))); outcome != OutcomeValid {
		t.Errorf("after a renewal: %s", outcome)
	}
}

func TestVeryLongAttributesAreAnErrorNotAPanic(t *testing.T) {
	clock := &testClock{t: testEpoch}
	cfg := DefaultConfig()
	cfg.CookiePath = "/" + strings.Repeat("p", 4100)
	manager := newTestManager(t, cfg, clock)
	s := NewSession()
	_ = s.Set("a", json.RawMessage(`1`))
	if _, err := manager.Save(context.Background(), s, http.Header{}); !errors.Is(err, ErrCookieTooLarge) {
		t.Errorf("err = %v", err)
	}
}
