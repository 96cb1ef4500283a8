package sessioncore

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// saveLines saves a session holding values and returns its Set-Cookie lines.
func saveLines(t *testing.T, manager *Manager, values string) ([]string, error) {
	t.Helper()
	s := NewSession()
	var m Mutation
	must(t, m.SetReplace([]byte(values)))
	must(t, s.Apply(&m))
	h := http.Header{}
	_, err := manager.Save(context.Background(), s, h)
	return h.Values("Set-Cookie"), err
}

// sentBytes is what the cookies set by lines add to a browser's Cookie
// line: each "name=value", joined by "; ".
func sentBytes(t *testing.T, lines []string) int {
	t.Helper()
	return len(cookiesOf(t, lines))
}

func TestSessionCookiesStayWithinTheBudget(t *testing.T) {
	tests := []struct {
		name        string
		budget      int // 0: the default
		sessionSize int
		wantParts   int // 0: refused
	}{
		{"small, default budget", 0, 1000, 1},
		{"the most the default budget holds (2,226 bytes of JSON)", 0, 2200, 1},
		{"just over the default budget", 0, 2210, 0},
		{"split, a budget of four cookies", 4 * MaxCookieSize, 6000, 3},
		{"the 431 report: 11,400 bytes in an 8-part config", 0, 11400, 0},
		{"a budget smaller than the parts allow", 6000, 6000, 0},
		{"the smallest budget", MinCookieBytes, 150, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MaxCookieBytes, cfg.MaxCookieParts = tt.budget, 8
			manager := newTestManager(t, cfg, &testClock{t: testEpoch})
			lines, err := saveLines(t, manager, bigSession(tt.sessionSize))
			if tt.wantParts == 0 {
				if !errors.Is(err, ErrCookieTooLarge) || len(lines) != 0 {
					t.Fatalf("Save = %d lines, %v; want ErrCookieTooLarge and nothing written", len(lines), err)
				}
				if !strings.Contains(err.Error(), "max_cookie_bytes") {
					t.Errorf("the error %q does not name the budget", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != tt.wantParts {
				t.Errorf("%d cookies, want %d", len(lines), tt.wantParts)
			}
			if sent, budget := sentBytes(t, lines), manager.maxBytes(); sent > budget {
				t.Errorf("the browser sends back %d bytes, over the budget of %d", sent, budget)
			}
		})
	}
}

// deletedNames returns the names of the cookies lines delete.
func deletedNames(t *testing.T, lines []string) []string {
	t.Helper()
	var names []string
	for _, line := range lines {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatal(err)
		}
		if c.MaxAge < 0 {
			names = append(names, c.Name)
		}
	}
	return names
}

func TestCookiesOverTheBudgetAreDeleted(t *testing.T) {
	clock := &testClock{t: testEpoch}
	older := newTestManager(t, splittingConfig(), clock) // an older config, four cookies allowed
	lines, err := saveLines(t, older, bigSession(6000))
	must(t, err)
	cookie := cookiesOf(t, lines)
	current := newTestManager(t, DefaultConfig(), clock)

	for _, tt := range []struct {
		name        string
		mutation    string // "" : the upstream changes nothing
		wantDeleted string
		wantSet     bool
	}{
		{"the response deletes every cookie", "", "session session.1 session.2", false},
		{"a login sets a new cookie and deletes the parts", `{"user":"bob"}`, "session.1 session.2", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := requestWithCookie("session", "")
			r.Header.Set("Cookie", cookie)
			s, outcome := current.Open(r)
			if outcome != OutcomeTooLarge || s.Len() != 0 {
				t.Fatalf("Open = %s with %d keys; want too_large and a new session", outcome, s.Len())
			}
			if tt.mutation != "" {
				var m Mutation
				must(t, m.AddUpdate([]byte(tt.mutation)))
				must(t, s.Apply(&m))
			}
			h := http.Header{}
			action, err := current.Save(context.Background(), s, h)
			must(t, err)
			if got := strings.Join(deletedNames(t, h.Values("Set-Cookie")), " "); got != tt.wantDeleted {
				t.Errorf("deleted %q, want %q", got, tt.wantDeleted)
			}
			if set := action == CookieSet; set != tt.wantSet {
				t.Errorf("action %s", action)
			}
			if h.Get("Vary") != "Cookie" {
				t.Errorf("Vary %q", h.Get("Vary"))
			}
		})
	}
}

func TestPartsBeyondTheConfigAreDeleted(t *testing.T) {
	clock := &testClock{t: testEpoch}
	cfg := splittingConfig()
	older := newTestManager(t, cfg, clock)
	lines, err := saveLines(t, older, bigSession(6000)) // three parts
	must(t, err)
	split := cookiesOf(t, lines)
	cfg.MaxCookieParts = 2
	current := newTestManager(t, cfg, clock)
	small := issue(t, current, `{"user":"alice"}`)

	for _, tt := range []struct {
		name, cookie string
		outcome      Outcome
		wantDeleted  string
	}{
		{"a valid session with a leftover part", "session=" + small + "; session.3=x", OutcomeValid, "session.2 session.3"},
		{"no session, a leftover part", "session.5=x", OutcomeNew, "session.2 session.3 session.4 session.5"},
		{"a session in more parts than allowed", split, OutcomeTooLarge, "session session.1 session.2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := requestWithCookie("session", "")
			r.Header.Set("Cookie", tt.cookie)
			s, outcome := current.Open(r)
			if outcome != tt.outcome {
				t.Fatalf("outcome %s, want %s", outcome, tt.outcome)
			}
			h := http.Header{}
			_, err := current.Save(context.Background(), s, h)
			must(t, err)
			if got := strings.Join(deletedNames(t, h.Values("Set-Cookie")), " "); got != tt.wantDeleted {
				t.Errorf("deleted %q, want %q", got, tt.wantDeleted)
			}
		})
	}
}

func TestNewManagerRefusesABudgetOutOfRange(t *testing.T) {
	codec, _ := NewSecureCookieCodec(testSecret)
	for _, budget := range []int{-1, MinCookieBytes - 1, MaxCookieBytesLimit + 1} {
		cfg := DefaultConfig()
		cfg.MaxCookieBytes = budget
		if _, err := NewManager(cfg, codec); err == nil {
			t.Errorf("a budget of %d accepted", budget)
		}
	}
}

func TestSplitPartsKeepThePrefixAttributes(t *testing.T) {
	cfg := splittingConfig()
	cfg.CookieName, cfg.CookieSecure = "__Host-sess", true
	manager := newTestManager(t, cfg, &testClock{t: testEpoch})
	lines, err := saveLines(t, manager, bigSession(6000))
	must(t, err)
	if len(lines) < 2 {
		t.Fatalf("%d lines, want a split session", len(lines))
	}
	for _, line := range lines {
		c, err := http.ParseSetCookie(line)
		must(t, err)
		if !strings.HasPrefix(c.Name, "__Host-sess") || !c.Secure || c.Path != "/" || c.Domain != "" {
			t.Errorf("%s: Secure %v, Path %q, Domain %q", c.Name, c.Secure, c.Path, c.Domain)
		}
	}
}
