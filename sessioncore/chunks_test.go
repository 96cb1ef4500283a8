package sessioncore

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// bigSession returns a session JSON of about n bytes that does not
// compress (the securecookie codec does not compress anyway).
func bigSession(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString("abcdefghijklmnopqrstuvwxyz0123456789"[i%36:])
	}
	return `{"blob":"` + b.String()[:n] + `","user":"alice"}`
}

// cookiesOf turns Set-Cookie lines into a Cookie header, as a browser
// would, dropping deleted cookies.
func cookiesOf(t *testing.T, lines []string) string {
	t.Helper()
	var pairs []string
	for _, line := range lines {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatal(err)
		}
		if len(line) > MaxCookieSize {
			t.Errorf("a %d-byte Set-Cookie line", len(line))
		}
		if c.MaxAge >= 0 && c.Value != "" {
			pairs = append(pairs, c.Name+"="+c.Value)
		}
	}
	return strings.Join(pairs, "; ")
}

// splittingConfig is the default configuration with a budget that lets a
// session take four full cookies.
func splittingConfig() Config {
	cfg := DefaultConfig()
	cfg.MaxCookieBytes = 4 * MaxCookieSize
	return cfg
}

func TestLargeSessionsAreSplitOverCookies(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: testEpoch}
	manager := newTestManager(t, splittingConfig(), clock)

	s := NewSession()
	var m Mutation
	must(t, m.SetReplace([]byte(bigSession(6000))))
	must(t, s.Apply(&m))
	h := http.Header{}
	if _, err := manager.Save(ctx, s, h); err != nil {
		t.Fatal(err)
	}
	lines := h.Values("Set-Cookie")
	if len(lines) != 3 {
		t.Fatalf("%d cookies for a 6 KB session", len(lines))
	}
	for k, want := range []string{"session=3!", "session.1=", "session.2="} {
		if !strings.HasPrefix(lines[k], want) {
			t.Errorf("cookie %d: %.20s", k, lines[k])
		}
	}
	r := requestWithCookie("session", "")
	r.Header.Set("Cookie", "theme=dark; "+cookiesOf(t, lines))
	opened, outcome := manager.Open(r)
	if outcome != OutcomeValid || opened.String() != s.String() {
		t.Fatalf("reopened: %s, %d bytes", outcome, len(opened.String()))
	}

	// Shrinking deletes the parts no longer used.
	must(t, opened.Set("blob", json.RawMessage(`"small"`)))
	h = http.Header{}
	if _, err := manager.Save(ctx, opened, h); err != nil {
		t.Fatal(err)
	}
	lines = h.Values("Set-Cookie")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "session.1=; Expires=Thu, 01 Jan 1970") || !strings.HasPrefix(lines[2], "session.2=;") {
		t.Errorf("after shrinking: %q", lines)
	}

	// Clearing deletes every part.
	r.Header.Set("Cookie", cookiesOf(t, h.Values("Set-Cookie"))+"; session.1=stale; session.2=stale")
	again, _ := manager.Open(r)
	must(t, again.Clear())
	h = http.Header{}
	if _, err := manager.Save(ctx, again, h); err != nil {
		t.Fatal(err)
	}
	if lines := h.Values("Set-Cookie"); len(lines) != 3 {
		t.Errorf("clearing: %q", lines)
	}
}

func TestChunkedCookieProblems(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: testEpoch}
	manager := newTestManager(t, splittingConfig(), clock)

	// Above the cap: the 502 rule's error.
	s := NewSession()
	var m Mutation
	must(t, m.SetReplace([]byte(bigSession(20000))))
	must(t, s.Apply(&m))
	if _, err := manager.Save(ctx, s, http.Header{}); !errors.Is(err, ErrCookieTooLarge) {
		t.Errorf("a 20 KB session: %v", err)
	}

	// A missing or foreign part gives a fresh session.
	s = NewSession()
	m = Mutation{}
	must(t, m.SetReplace([]byte(bigSession(6000))))
	must(t, s.Apply(&m))
	h := http.Header{}
	must(t, func() error { _, err := manager.Save(ctx, s, h); return err }())
	full := cookiesOf(t, h.Values("Set-Cookie"))
	for name, cookie := range map[string]string{
		"missing part":  strings.Split(full, "; ")[0] + "; " + strings.Split(full, "; ")[1],
		"swapped parts": strings.Replace(strings.Replace(full, "session.1=", "session.X=", 1), "session.2=", "session.1=", 1),
		"absurd count":  "session=99!abc",
		"count of one":  "session=1!abc",
	} {
		r := requestWithCookie("session", "")
		r.Header.Set("Cookie", cookie)
		if opened, outcome := manager.Open(r); opened.Len() != 0 || outcome != OutcomeBadSignature {
			t.Errorf("%s: %s %d keys", name, outcome, opened.Len())
		}
	}
}
