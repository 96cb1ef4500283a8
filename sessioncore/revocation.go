package sessioncore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Per-user revocation: "log out my other devices", "log this user out
// everywhere", for cookie sessions too. A small shared map holds, per
// revoked user, a cutoff: every session of that user created before it is
// void. The cookie stays stateless; the map holds one entry per revoked
// user, for as long as a session it voids could live.

// Revocations is a per-user revocation map.
type Revocations interface {
	// Cutoff returns the user's cutoff; zero when there is none.
	Cutoff(ctx context.Context, user string) (time.Time, error)
	// Revoke sets the user's cutoff, kept for ttl. A later cutoff
	// replaces an earlier one, never the reverse.
	Revoke(ctx context.Context, user string, cutoff time.Time, ttl time.Duration) error
}

// Timeless is implemented by a codec whose cookie carries no time at all
// (Express's cookie-session): per-user revocation cannot apply to it, since
// every such cookie looks issued now.
type Timeless interface{ Timeless() bool }

// WithRevocations makes the Manager void every session whose user (the
// string or number under userKey) has a cutoff in r later than the
// session's creation, looking cutoffs up through a local cache that is at
// most staleness old, so that most reads cost no round trip to a shared
// map.
func WithRevocations(r Revocations, userKey string, staleness time.Duration) Option {
	return func(m *Manager) {
		m.revocations = &revocationCache{source: r, staleness: staleness, entries: map[string]cachedCutoff{}}
		m.revocationStaleness = staleness
		m.userKey = userKey
	}
}

// ErrNoRevocations is returned when an upstream asks for a revocation and
// the Manager has no revocation map or no user key.
var ErrNoRevocations = errors.New("revoking a user's sessions needs user_key and a revocation_store")

// revocationCacheSize bounds the local cache; past it, it starts afresh.
const revocationCacheSize = 100_000

// revocationCache answers cutoff lookups from memory while they are fresh.
type revocationCache struct {
	source    Revocations
	staleness time.Duration

	mu      sync.Mutex
	entries map[string]cachedCutoff
}

type cachedCutoff struct {
	cutoff  time.Time
	fetched time.Time
}

func (c *revocationCache) cutoff(ctx context.Context, user string, now time.Time) (time.Time, error) {
	c.mu.Lock()
	e, ok := c.entries[user]
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < c.staleness {
		return e.cutoff, nil
	}
	cutoff, err := c.source.Cutoff(ctx, user)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: looking up a revocation: %w", ErrStore, err)
	}
	c.remember(user, cutoff, now)
	return cutoff, nil
}

func (c *revocationCache) remember(user string, cutoff, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= revocationCacheSize {
		clear(c.entries)
	}
	c.entries[user] = cachedCutoff{cutoff: cutoff, fetched: now}
}

// userOf returns the session's user for revocation: the value under the
// user key, when it is a string or a number; "" otherwise.
func (m *Manager) userOf(s *Session) string {
	raw, ok := s.Get(m.userKey)
	if !ok || len(raw) == 0 || !(raw[0] == '"' || raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9') {
		return ""
	}
	return ValueText(raw)
}

// checkUserCutoff voids s when its user has a cutoff later than its
// creation (to the second, the creation time's precision).
func (m *Manager) checkUserCutoff(ctx context.Context, s *Session) (Outcome, error) {
	user := m.userOf(s)
	if user == "" {
		return "", nil
	}
	cutoff, err := m.revocations.cutoff(ctx, user, m.now())
	if err != nil {
		return OutcomeUnavailable, err
	}
	created := s.created
	if created.IsZero() {
		created = s.issued
	}
	if !cutoff.IsZero() && created.Unix() < cutoff.Unix() {
		return OutcomeRevoked, errors.New("created before its user's sessions were revoked")
	}
	return "", nil
}

// EndOfSecond returns the cutoff that voids every session created up to
// t's second, the creation time's precision: what "log out everywhere"
// needs, where a cutoff of t itself would spare a session created in the
// same second.
func EndOfSecond(t time.Time) time.Time { return t.Truncate(time.Second).Add(time.Second) }

// RevokeUser voids every session of user created before cutoff, in the
// Manager's revocation map.
func (m *Manager) RevokeUser(ctx context.Context, user string, cutoff time.Time) error {
	if m.revocations == nil {
		return ErrNoRevocations
	}
	// Kept as long as a session it voids could be refreshed through a
	// stale cache and then live out its lifetime.
	ttl := m.config.Lifetime + m.revocationStaleness + MaxClockSkew
	if err := m.revocations.source.Revoke(ctx, user, cutoff, ttl); err != nil {
		return fmt.Errorf("%w: revoking a user's sessions: %w", ErrStore, err)
	}
	m.revocations.remember(user, cutoff, m.now()) // this instance knows at once
	return nil
}

// revokedSinceOpen reports whether s, of a codec that keeps no creation
// time (its issue time stands in), was revoked after it was opened, asking
// the map itself rather than the cache: reissuing it would give it a new
// issue time, and so a creation time after the cutoff, for good.
func (m *Manager) revokedSinceOpen(ctx context.Context, s *Session) bool {
	if m.revocations == nil || !s.created.IsZero() || s.issued.IsZero() || s.renew {
		return false
	}
	user := m.userOf(s)
	if user == "" {
		return false
	}
	cutoff, err := m.revocations.source.Cutoff(ctx, user)
	if err != nil || cutoff.IsZero() {
		return false // a refresh is not worth failing the request; the next open checks again
	}
	m.revocations.remember(user, cutoff, m.now())
	return s.issued.Unix() < cutoff.Unix()
}

// revoke applies an upstream's X-Session-Revoke to s, after the rest of
// its mutation. others: every session of s's user created before this
// second is void, and s is renewed, so that it outlives the cutoff (a
// session created in the same second survives too). all: every session
// created up to the end of this second is void, and s is emptied. A
// session without a user has nothing to revoke but itself.
func (m *Manager) revoke(ctx context.Context, s *Session, r Revoke) error {
	if m.revocations == nil || m.userKey == "" {
		return ErrNoRevocations
	}
	if user := m.userOf(s); user != "" {
		cutoff := m.now()
		if r == RevokeAll {
			cutoff = EndOfSecond(cutoff)
		}
		if err := m.RevokeUser(ctx, user, cutoff); err != nil {
			return err
		}
	}
	if r == RevokeAll {
		return s.Clear()
	}
	return s.Renew()
}
