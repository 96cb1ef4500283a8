package sessioncore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// ErrStore is wrapped by every error that comes from a session store: the
// store could not be reached or did not answer as it should.
var ErrStore = errors.New("session store unavailable")

// Store keeps sessions on the server, so that the cookie carries only a
// signed, random session ID: sessions may be larger than a cookie, can be
// revoked, and concurrent requests that change different keys of one
// session all persist.
//
// Implementations must be safe for concurrent use. Their errors should
// wrap ErrStore.
type Store interface {
	// Load returns the values of the session id. found is false when the
	// store does not know id, or it has expired.
	Load(ctx context.Context, id string) (values map[string]json.RawMessage, found bool, err error)
	// Commit applies one request's changes to the session id atomically
	// and makes it expire after ttl. Unless changes.Create is set, a session
	// that no longer exists (revoked, renewed or emptied by a concurrent
	// request) is left alone: Commit must not bring an ID back. exists
	// reports whether the session exists afterwards; a session left with
	// no keys does not.
	Commit(ctx context.Context, id string, changes Changes, ttl time.Duration) (exists bool, err error)
	// Delete removes the session id and reports whether it existed.
	Delete(ctx context.Context, id string) (bool, error)
}

// FreshLoads is implemented by a store whose Load may answer from a cache
// that lags behind changes made through other processes (the Redis store
// with a client-side cache). LoadFresh reads what the store holds now.
type FreshLoads interface {
	LoadFresh(ctx context.Context, id string) (values map[string]json.RawMessage, found bool, err error)
}

// LoadFresh reads the session id as store holds it now: through
// FreshLoads when store has it, through Load otherwise. The decisions that
// must not act on an old copy use it: whether a session being renewed
// still exists (a revoked one must not come back under a new ID), and what
// another gateway saved meanwhile.
func LoadFresh(ctx context.Context, store Store, id string) (map[string]json.RawMessage, bool, error) {
	if fresh, ok := store.(FreshLoads); ok {
		return fresh.LoadFresh(ctx, id)
	}
	return store.Load(ctx, id)
}

// Evictions is implemented by a store that evicts sessions to stay within
// its bounds (the memory store). A session evicted while a request was
// using it is written back whole by that request's save, under the same
// ID, rather than losing the request's changes; a session that was
// deleted, renewed, emptied or has expired is never written back.
type Evictions interface {
	// Restore is called when Commit found the session id gone. As one
	// step, it creates the session again with values (the session as the
	// request holds it) if the store evicted it to stay within its
	// bounds, recently, not deleted since and not past the expiry it had;
	// if another request restored it meanwhile, it applies changes only.
	// It reports whether the session exists afterwards.
	Restore(ctx context.Context, id string, values map[string]json.RawMessage, changes Changes, ttl time.Duration) (bool, error)
}

// Changes is what one request did to a session, key by key, so that a
// store can apply it without overwriting what concurrent requests did to
// other keys.
type Changes struct {
	// Create makes the session if it does not exist: only for a new ID.
	Create bool
	// Clear removes every key before Set is applied (a replacement, or a
	// session moving to a new ID), but the private fields (those that
	// begin with PrivatePrefix), which stay unless Set or Deleted name
	// them: a replacement by the upstream must not put back a private
	// value older than the one another request saved meanwhile.
	Clear bool
	// Set holds the new values of the keys that were written.
	Set map[string]json.RawMessage
	// Deleted lists the keys that were removed.
	Deleted []string
	// Owner says whose session it is, for a store that indexes sessions
	// by user (UserIndex); nil when the session names no user.
	Owner *Owner
}

// Owner is a session's user, and where the session is used.
type Owner struct {
	User     string
	Device   string // a short label from the User-Agent
	ClientIP string // only when the gateway records client addresses
	Created  time.Time
}

// UserIndex is implemented by a store that keeps, per user, the set of
// that user's live sessions, from the Owner of each commit. Sessions leave
// it when they expire, are renewed, revoked or emptied.
type UserIndex interface {
	// Sessions returns the user's live sessions, oldest first.
	Sessions(ctx context.Context, user string) ([]SessionInfo, error)
}

// SessionInfo describes one of a user's sessions, for the user and for
// operators. The ID itself is for the gateway only: IDHash stands for it
// anywhere else.
type SessionInfo struct {
	ID       string    `json:"-"`
	IDHash   string    `json:"id_hash"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Device   string    `json:"device,omitempty"`
	ClientIP string    `json:"client_ip,omitempty"`
}

// HashID returns what stands for a session ID outside the gateway: the
// first 16 bytes of its SHA-256, base64url.
func HashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// sessionIDBytes is the entropy of a session ID: 256 bits, as scs and
// Flask-Session use; at least 128 are required.
const sessionIDBytes = 32

// newSessionID returns a new random session ID in URL-safe base64. It
// never begins with '-', which command lines would read as a flag
// (caddy session revoke <id>): an ID that would is drawn again, which
// costs 0.02 of its 256 bits.
func newSessionID() (string, error) {
	var b [sessionIDBytes]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id, nil
		}
	}
}

// ValidSessionID reports whether id has the form of the gateway's session
// IDs, so that nothing else is ever looked up in a store.
func ValidSessionID(id string) bool {
	if len(id) != base64.RawURLEncoding.EncodedLen(sessionIDBytes) {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// The cookie of a server-side session seals {"sid":"<id>"}.
type idPayload struct {
	SID string `json:"sid"`
}

// ValidStoredValue checks a value read from a store that others can write
// to (Redis) before it can reach a header: one valid JSON value, compact
// printable ASCII, not too deep.
func ValidStoredValue(v []byte) bool {
	compactASCII, depth := scanShape(v)
	if !compactASCII || depth >= MaxNestingDepth {
		return false
	}
	// Most values are strings without escapes, which scanShape has read
	// whole: valid if no quote ends them early. json.Valid, which costs
	// several times more, checks the rest.
	if s, ok := plainString(v); ok && bytes.IndexByte(s, '"') < 0 {
		return true
	}
	return json.Valid(v)
}
