package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// Revocations is a per-user revocation map in this process's memory, for a
// single instance (see sessioncore.Revocations).
type Revocations struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[string]revocation
}

type revocation struct {
	cutoff, expires time.Time
}

// NewRevocations returns an empty map. now is its clock; nil means
// time.Now.
func NewRevocations(now func() time.Time) *Revocations {
	if now == nil {
		now = time.Now
	}
	return &Revocations{now: now, entries: map[string]revocation{}}
}

// Cutoff implements sessioncore.Revocations.
func (r *Revocations) Cutoff(_ context.Context, user string) (time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[user]
	if !ok || !r.now().Before(e.expires) {
		return time.Time{}, nil
	}
	return e.cutoff, nil
}

// Revoke implements sessioncore.Revocations. Expired entries go a few at
// a time on every revocation, so the map never outgrows the users revoked
// within a lifetime.
func (r *Revocations) Revoke(_ context.Context, user string, cutoff time.Time, ttl time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	swept := 0
	for u, e := range r.entries {
		if swept == 8 {
			break
		}
		if !now.Before(e.expires) {
			delete(r.entries, u)
		}
		swept++
	}
	if e, ok := r.entries[user]; ok && e.cutoff.After(cutoff) {
		cutoff = e.cutoff
	}
	r.entries[user] = revocation{cutoff: cutoff, expires: now.Add(ttl)}
	return nil
}

// Len returns how many users the map holds, expired ones included until
// they are swept.
func (r *Revocations) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

var _ sessioncore.Revocations = (*Revocations)(nil)
