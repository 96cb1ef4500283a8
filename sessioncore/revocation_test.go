package sessioncore

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// mapRevocations is the simplest revocation map, for the Manager's tests.
type mapRevocations struct {
	cutoffs map[string]time.Time
	lookups int
}

func (m *mapRevocations) Cutoff(_ context.Context, user string) (time.Time, error) {
	m.lookups++
	return m.cutoffs[user], nil
}

func (m *mapRevocations) Revoke(_ context.Context, user string, cutoff time.Time, _ time.Duration) error {
	if cutoff.After(m.cutoffs[user]) {
		m.cutoffs[user] = cutoff
	}
	return nil
}

func TestUserRevocation(t *testing.T) {
	clock := &testClock{t: testEpoch}
	revocations := &mapRevocations{cutoffs: map[string]time.Time{}}
	codec, _ := NewSecureCookieCodec(testSecret)
	manager, err := NewManager(DefaultConfig(), codec, WithClock(clock.Now), WithRevocations(revocations, "user", time.Second))
	must(t, err)
	g, err := NewGateway(manager, GatewayConfig{})
	must(t, err)

	phone := issue(t, manager, `{"user":"alice"}`)
	laptop := issue(t, manager, `{"user":"alice"}`)
	bob := issue(t, manager, `{"user":"bob"}`)
	number := issue(t, manager, `{"user":42}`)
	clock.Advance(2 * time.Second)

	// The laptop logs the other devices out.
	header, d := roundTrip(t, g, "session="+laptop, "X-Session-Revoke", "others")
	if d.Refused != nil || d.Action != CookieSet {
		t.Fatalf("Depart = %+v", d)
	}
	renewed := cookieValue(t, header, "session")
	clock.Advance(2 * time.Second) // past the cache's staleness bound
	for _, tc := range []struct {
		name, cookie string
		want         Outcome
	}{
		{"the phone", phone, OutcomeRevoked},
		{"the old laptop cookie", laptop, OutcomeRevoked},
		{"the laptop's renewed cookie", renewed, OutcomeValid},
		{"another user", bob, OutcomeValid},
		{"a user named by a number", number, OutcomeValid},
	} {
		if s, outcome := manager.Open(requestWithCookie("session", tc.cookie)); outcome != tc.want {
			t.Errorf("%s: %s %s, want %s", tc.name, outcome, s, tc.want)
		}
	}

	// Within the staleness bound, lookups come from the cache.
	before := revocations.lookups
	for range 5 {
		manager.Open(requestWithCookie("session", bob))
	}
	if revocations.lookups != before {
		t.Errorf("%d lookups within the staleness bound, want 0", revocations.lookups-before)
	}

	// Log out everywhere: this session too, its cookie deleted.
	header, d = roundTrip(t, g, "session="+renewed, "X-Session-Revoke", "all")
	if d.Action != CookieDeleted || len(header.Values("Set-Cookie")) != 1 {
		t.Errorf("all: %+v %q", d, header.Values("Set-Cookie"))
	}

	// Without a revocation map the header is refused, as a malformed
	// mutation.
	plain, _ := newTestGateway(t, nil, GatewayConfig{})
	if _, d := roundTrip(t, plain, "", "X-Session-Revoke", "others"); d.Status != http.StatusBadGateway {
		t.Errorf("without a revocation map: %+v", d)
	}
}
