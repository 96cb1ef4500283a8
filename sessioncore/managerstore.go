package sessioncore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"go.uber.org/zap"
)

// The parts of Manager that deal with a server-side Store.

// load looks up in the store the session whose ID the cookie carried.
func (m *Manager) load(ctx context.Context, cookie *Session, outcome Outcome) (*Session, Outcome, error) {
	var id string
	raw, _ := cookie.Get("sid")
	if json.Unmarshal(raw, &id) != nil || !ValidSessionID(id) {
		// A cookie from before the store was configured, most likely.
		return nil, OutcomeUnknownID, errors.New("the cookie holds no session ID")
	}
	values, found, err := m.store.Load(ctx, id)
	switch {
	case errors.Is(err, ErrUndecodable):
		return nil, OutcomeUndecodable, err
	case err != nil:
		return nil, OutcomeUnavailable, err
	case !found:
		// Never adopt an ID the store does not know: the client gets a
		// fresh one (session fixation).
		return nil, OutcomeUnknownID, errors.New("the store does not know the session ID")
	}
	s := sessionFromPayload(values, cookie.created, m.form, nil)
	s.splitPrivate()
	s.id, s.issued = id, cookie.issued
	return s, outcome, nil
}

// storeTimeout bounds a save. The save does not stop when the client goes
// away: its changes are committed all the same.
const storeTimeout = 5 * time.Second

// saveToStore commits the session's changes to the store and decides the
// Set-Cookie line that carries its ID. A new or renewed session moves to a
// new ID with all its values, and a renewed one's old ID is deleted.
func (m *Manager) saveToStore(ctx context.Context, s *Session) (CookieAction, string, error) {
	if !s.Modified() && (s.Len() == 0 || !m.ShouldSetCookie(s)) {
		return CookieUntouched, "", nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()

	if s.Len() == 0 {
		return m.emptyStored(ctx, s)
	}
	id, changes := s.id, s.changes()
	if id == "" || s.renew {
		if s.id != "" {
			// A renewal copies the session to a new ID: not one another
			// request revoked or emptied meanwhile, and with the private
			// values as they are stored now, not as this request loaded
			// them (a token refresh meanwhile must not be undone). Not
			// from a cache: another gateway's revocation must count.
			stored, found, err := LoadFresh(ctx, m.store, s.id)
			switch {
			case err != nil:
				return CookieUntouched, "", err
			case !found:
				m.logger.Warn("session not renewed: it was revoked, renewed or emptied meanwhile")
				return CookieUntouched, "", nil
			}
			s.takeStoredPrivate(stored)
			members := renewedMembers(stored, changes)
			if !hasPublicKey(members) {
				// This request's deletions and another's meanwhile left
				// nothing: the session is over, as a save without renewal
				// would end it, and so is its old ID.
				return m.emptyStored(ctx, s)
			}
			changes = Changes{Create: true, Clear: true, Set: members}
		} else {
			changes = Changes{Create: true, Clear: true, Set: s.storedMembers()}
		}
		var err error
		if id, err = newSessionID(); err != nil {
			return CookieUntouched, "", fmt.Errorf("%w: %w", ErrStore, err)
		}
	}
	changes.Owner = m.owner(s)
	exists, err := m.store.Commit(ctx, id, changes, m.config.Lifetime)
	if ev, ok := m.store.(Evictions); ok && err == nil && !exists {
		// Memory pressure may have evicted the session while this request
		// used it: the request holds all of it, so the store may put it
		// back whole, with its changes, under the same ID.
		if exists, err = ev.Restore(ctx, id, s.storedMembers(), changes, m.config.Lifetime); exists {
			m.logger.Warn("session evicted from the store while its request ran (max_sessions or max_memory); written back whole")
		}
	}
	switch {
	case err != nil && !s.Modified():
		// Only the expiry was to move: the session is intact, so the
		// request need not fail; the cookie stays as it was.
		m.logger.Warn("session expiry not refreshed", zap.Error(err))
		return CookieUntouched, "", nil
	case err != nil:
		return CookieUntouched, "", err
	case !exists:
		// A concurrent request renewed, revoked or emptied the session:
		// its ID is gone, and is not brought back.
		m.logger.Warn("session changes not saved: the session was renewed, revoked or emptied meanwhile")
		return CookieUntouched, "", nil
	}
	if s.id != "" && id != s.id {
		// Renewal: the old ID must die, or a fixated one lives on.
		if _, err := m.store.Delete(ctx, s.id); err != nil {
			return CookieUntouched, "", err
		}
	}
	s.id = id
	sealed, _ := json.Marshal(idPayload{SID: id})
	line, err := m.cookieLine(s, sealed)
	if err != nil {
		return CookieUntouched, "", err
	}
	return CookieSet, line, nil
}

// owner returns whose session s is, for a store's user index: nil without
// a user key, or for a session that names no user.
func (m *Manager) owner(s *Session) *Owner {
	if m.userKey == "" {
		return nil
	}
	user := m.userOf(s)
	if user == "" {
		return nil
	}
	created := s.created
	if created.IsZero() || s.renew {
		created = m.now()
	}
	return &Owner{User: user, Device: s.device, ClientIP: s.clientIP, Created: created}
}

// emptyStored saves a session this request emptied. A cleared session is
// deleted whole; one whose keys were removed one by one loses just those
// keys, so keys that concurrent requests added survive, and the cookie is
// deleted only when nothing is left.
func (m *Manager) emptyStored(ctx context.Context, s *Session) (CookieAction, string, error) {
	s.dropPrivate() // private values go with the last key: the session is over
	if s.id != "" {
		if s.cleared {
			if _, err := m.store.Delete(ctx, s.id); err != nil {
				return CookieUntouched, "", err
			}
		} else {
			exists, err := m.store.Commit(ctx, s.id, s.changes(), m.config.Lifetime)
			if err != nil {
				return CookieUntouched, "", err
			}
			if exists {
				return CookieUntouched, "", nil
			}
			// Gone, and meant to be: a store that evicted it must not
			// write it back for another request still using it.
			if _, err := m.store.Delete(ctx, s.id); err != nil {
				return CookieUntouched, "", err
			}
		}
		s.id = ""
	}
	return CookieDeleted, m.attrs.deleteLine(), nil
}

// ErrSessionGone is returned by SavePrivate when the session is no longer
// in the store: revoked, renewed or emptied by another request.
var ErrSessionGone = errors.New("the session is no longer stored")

// SavePrivate sets the private value name of s (nil removes it) and
// writes it to the store at once, ahead of the response: for a value that
// other requests of the session, on any instance, must see as soon as
// possible, such as a refresh token a provider has just rotated. The
// session is not marked modified. It needs a store and a session already
// saved; otherwise it returns an error and changes nothing.
func (m *Manager) SavePrivate(ctx context.Context, s *Session, name string, value json.RawMessage) error {
	if err := s.checkAvailable(); err != nil {
		return err
	}
	if m.store == nil || s.id == "" {
		return errors.New("no stored session to save a private value to")
	}
	value, err := normalizePrivate(name, value)
	if err != nil {
		return err
	}
	field := PrivatePrefix + name
	c := Changes{Deleted: []string{field}}
	if value != nil {
		c = Changes{Set: map[string]json.RawMessage{field: value}}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	exists, err := m.store.Commit(ctx, s.id, c, m.config.Lifetime)
	switch {
	case err != nil:
		return err
	case !exists:
		return ErrSessionGone
	}
	s.putPrivate(name, value)
	delete(s.privateDirty, name) // saved already
	return nil
}

// renewedMembers is what a renewal writes under the new ID: the session as
// the store holds it now, with this request's changes applied, as a save
// without renewal applies them. A key that another request or gateway
// changed meanwhile keeps its change, rather than the value this request
// opened (which a client-side cache may have kept from before it).
func renewedMembers(stored map[string]json.RawMessage, c Changes) map[string]json.RawMessage {
	members := make(map[string]json.RawMessage, len(stored)+len(c.Set))
	for k, v := range stored {
		if c.Clear && !reservedKey(k) {
			continue // a replacement keeps only the private fields it does not name
		}
		members[k] = v
	}
	for _, k := range c.Deleted {
		delete(members, k)
	}
	maps.Copy(members, c.Set)
	return members
}

// hasPublicKey reports whether members hold a key of the session's own,
// not only private values.
func hasPublicKey(members map[string]json.RawMessage) bool {
	for k := range members {
		if !reservedKey(k) {
			return true
		}
	}
	return false
}
