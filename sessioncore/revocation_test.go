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

// A codec that keeps no creation time (Flask's: the issue time stands in)
// is not reissued once its user was revoked, whatever the cache says: the
// reissue would give it an issue time after the cutoff, for good.
func TestARevokedFlaskSessionIsNotReissued(t *testing.T) {
	clock := &testClock{t: testEpoch}
	revocations := &mapRevocations{cutoffs: map[string]time.Time{}}
	codec, _ := NewFlaskCodec(testSecret)
	cfg := DefaultConfig()
	manager, err := NewManager(cfg, codec, WithClock(clock.Now), WithRevocations(revocations, "user", time.Hour))
	must(t, err)
	cookie := issue(t, manager, `{"user":"alice","_permanent":true}`)
	s, outcome := manager.Open(requestWithCookie("session", cookie)) // cached: no cutoff
	if outcome != OutcomeValid {
		t.Fatal(outcome)
	}
	clock.Advance(2 * time.Second)
	revocations.cutoffs["alice"] = clock.Now() // another instance revoked her
	h := http.Header{}
	if action, err := manager.Save(context.Background(), s, h); err != nil || action != CookieUntouched || h.Get("Set-Cookie") != "" {
		t.Errorf("a revoked Flask session was reissued: %s %v %q", action, err, h.Get("Set-Cookie"))
	}
}

// Per-user revocation cannot apply to a cookie that carries no time.
func TestRevocationsAreRefusedForATimelessCodec(t *testing.T) {
	if _, err := NewManager(DefaultConfig(), timelessCodec{}, WithRevocations(&mapRevocations{}, "user", 0)); err == nil {
		t.Error("accepted")
	}
}

type timelessCodec struct{ fixedCodec }

func (timelessCodec) Timeless() bool { return true }
