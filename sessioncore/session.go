package sessioncore

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"
	"unsafe"
)

// PermanentKey is the key under which a session stores whether it is
// permanent, exactly as Flask stores it: {"_permanent": true}.
const PermanentKey = "_permanent"

// ErrUnavailable is wrapped by every error a null session returns when asked
// to change.
var ErrUnavailable = errors.New("the session is unavailable")

// Session is one client's session: top-level keys mapped to JSON values,
// with the flags Flask keeps beside them.
//
// Values are held as normalized raw JSON (compact, printable ASCII) and are
// parsed only when a change needs it. A Session is not safe for concurrent
// use; the gateway uses one per request.
type Session struct {
	values map[string]json.RawMessage

	modified bool
	accessed bool
	isNew    bool
	// purge says the request's session cookies were over the budget: the
	// response deletes them unless it sets new ones.
	purge bool
	// legacySeen has bit i set when the request carried the legacy cookie
	// of the gateway's i-th Migration; legacyPurge says they all go, since
	// the session's own cookie was refused for its age or revoked.
	legacySeen  uint8
	legacyPurge bool

	// created is when the session was first issued; it travels in the
	// cookie unchanged across reissues. Zero for a session never saved.
	created time.Time
	// issued is when the cookie it came from was issued.
	issued time.Time
	// partsSeen is the highest numbered part cookie the request carried,
	// so that saving can delete the parts no longer used.
	partsSeen int

	// unavailable is non-nil for a null session and says why.
	unavailable error

	// form converts values between the codec's stored form and the plain
	// JSON the upstream sees; nil when they are the same.
	form ValueForm

	// raw is the stored JSON the session was opened from, while it is
	// unchanged: writing it again, or handing it upstream, costs nothing.
	raw []byte
	// rawPermanent is raw's _permanent value while values is not split
	// from raw yet (see members).
	rawPermanent json.RawMessage
	// sealed is the codec's sealed form of raw and created (Payload.Sealed),
	// while both are unchanged: reissuing the session only signs a new
	// issue time over it. Nil when the codec cannot reuse it.
	sealed []byte
	// opened is what the cookie value opened to, while the session is
	// unchanged, so that its reissued value can be remembered too.
	opened *opened

	// device and clientIP describe where the request came from, for a
	// store's user index.
	device, clientIP string

	// With a server-side store: the session's ID ("" until it is first
	// saved), and what changed since it was opened, key by key.
	id      string
	cleared bool
	dirty   map[string]struct{}
	renew   bool

	// private holds the gateway's own values, by name, kept with the
	// session by a server-side store and never among its values (see
	// SetPrivate); privateDirty names those changed since it was opened.
	private      map[string]json.RawMessage
	privateDirty map[string]struct{}
}

// NewSession returns a new, empty session, as Flask's open_session does
// when the request carries no usable cookie.
func NewSession() *Session {
	return &Session{values: map[string]json.RawMessage{}, isNew: true}
}

// NewNullSession returns a session that reads as empty and refuses every
// change with an error that wraps ErrUnavailable and says why. reason may be
// nil, in which case a generic reason is used.
func NewNullSession(reason error) *Session {
	if reason == nil {
		reason = errors.New("no session could be opened")
	}
	return &Session{values: map[string]json.RawMessage{}, unavailable: reason}
}

// IsNull reports whether s is a null session.
func (s *Session) IsNull() bool { return s.unavailable != nil }

// Unavailable returns why a null session is null, and nil otherwise.
func (s *Session) Unavailable() error { return s.unavailable }

// Modified reports whether the session was changed since it was opened.
func (s *Session) Modified() bool { return s.modified }

// Accessed reports whether the session was read or changed since it was opened.
func (s *Session) Accessed() bool { return s.accessed }

// IsNew reports whether the session did not come from a valid cookie.
func (s *Session) IsNew() bool { return s.isNew }

// Created returns when the session was first issued (zero if it never was).
func (s *Session) Created() time.Time { return s.created }

// MarkAccessed records that the session's contents were read, which makes
// the response vary by cookie.
func (s *Session) MarkAccessed() { s.accessed = true }

// Len returns the number of top-level keys.
func (s *Session) Len() int { return len(s.members()) }

// isEmpty reports whether the session has no keys, without splitting it.
func (s *Session) isEmpty() bool {
	if s.values == nil && s.raw != nil {
		return len(s.raw) == len("{}")
	}
	return len(s.values) == 0
}

// Get returns the value stored under key as plain JSON, the form the
// upstream sees. The returned bytes must not be modified.
func (s *Session) Get(key string) (json.RawMessage, bool) {
	var v json.RawMessage
	var ok bool
	if s.values == nil && s.raw != nil {
		// One key of a session not split yet (the user, for a forward
		// header or a revocation check): found without splitting it.
		v, ok = lookupMember(s.raw, key)
	} else {
		v, ok = s.members()[key]
	}
	if ok && s.form != nil {
		v = s.form.ToPlain(v)
	}
	return v, ok
}

// Permanent reports whether the session is permanent: its _permanent value
// is true in Python's sense, as Flask reads it.
func (s *Session) Permanent() bool {
	if s.values == nil && s.raw != nil {
		return truthy(s.rawPermanent)
	}
	v, ok := s.values[PermanentKey]
	return ok && truthy(v)
}

// SetPermanent stores the permanent flag under PermanentKey. Like every
// assignment in Flask, it marks the session modified even when the flag
// does not change.
func (s *Session) SetPermanent(permanent bool) error {
	return s.Set(PermanentKey, json.RawMessage(fmt.Sprint(permanent)))
}

// Set stores value, which must be one valid plain JSON value, under key and
// marks the session modified (even when the value is unchanged, as Flask
// does).
func (s *Session) Set(key string, value json.RawMessage) error {
	if err := s.checkAvailable(); err != nil {
		return err
	}
	if reservedKey(key) {
		return fmt.Errorf("session key %q: %w", key, ErrReservedKey)
	}
	// One level less: the value nests inside the session object, and a
	// session deeper than MaxNestingDepth would not open again.
	normalized, err := normalizeJSONDepth(value, MaxNestingDepth-1)
	if err != nil {
		return fmt.Errorf("session key %q: %w", key, err)
	}
	s.members()[key] = s.stored(normalized)
	s.touchKey(key)
	return nil
}

// Adopt replaces the whole session with values already in the codec's
// stored form, such as those of a cookie the upstream set itself, and
// marks it modified.
func (s *Session) Adopt(values map[string]json.RawMessage) error {
	if err := s.checkAvailable(); err != nil {
		return err
	}
	s.values = maps.Clone(values)
	if s.values == nil {
		s.values = map[string]json.RawMessage{}
	}
	maps.DeleteFunc(s.values, func(k string, _ json.RawMessage) bool { return reservedKey(k) })
	s.touchAll()
	return nil
}

// ID returns the session's ID in a server-side store: "" for the cookie
// store, and for a session not saved yet.
func (s *Session) ID() string { return s.id }

// Renew asks for the session to get a new ID when it is saved, keeping its
// data, and for the old ID to be invalidated: the defence against session
// fixation after a login. With the cookie store it reissues the cookie.
func (s *Session) Renew() error {
	if err := s.checkAvailable(); err != nil {
		return err
	}
	s.renew = true
	s.modified = true
	s.sealed, s.opened = nil, nil // a renewed session starts a new life: a new creation time
	return nil
}

// changes returns what changed since the session was opened, key by key,
// private values included.
func (s *Session) changes() Changes {
	var c Changes
	s.addPrivateChanges(&c)
	if s.cleared {
		// The store keeps the private fields the request did not change.
		c.Clear = true
		if c.Set == nil {
			c.Set = make(map[string]json.RawMessage, len(s.members()))
		}
		maps.Copy(c.Set, s.members())
		return c
	}
	for k := range s.dirty {
		if v, ok := s.members()[k]; ok {
			if c.Set == nil {
				c.Set = map[string]json.RawMessage{}
			}
			c.Set[k] = v
		} else {
			c.Deleted = append(c.Deleted, k)
		}
	}
	return c
}

// onlyRemoves reports whether every change made to the session removed a
// key.
func (s *Session) onlyRemoves() bool {
	members := s.members()
	if s.cleared {
		return len(members) == 0
	}
	for k := range s.dirty {
		if _, ok := members[k]; ok {
			return false
		}
	}
	return true
}

// jsonSize returns the size of the session's JSON as it is stored and sent
// upstream, {"k":v,...}, keys escaped as appendString writes them.
func (s *Session) jsonSize() int {
	members := s.members()
	size := len("{}") + max(len(members)-1, 0) // the commas
	for k, v := range members {
		size += quotedLen(k) + len(":") + len(v)
	}
	return size
}

// Delete removes key. Like Flask's pop, it marks the session modified only
// when the key was present.
func (s *Session) Delete(key string) error {
	if err := s.checkAvailable(); err != nil {
		return err
	}
	if _, ok := s.members()[key]; ok {
		delete(s.values, key)
		s.touchKey(key)
	}
	return nil
}

// Clear removes every key, and every private value, and marks the session
// modified, even when it was already empty, as Flask's clear does.
func (s *Session) Clear() error {
	if err := s.checkAvailable(); err != nil {
		return err
	}
	s.values = map[string]json.RawMessage{} // not clear: unsplit values would come back from raw
	s.dropPrivate()
	s.touchAll()
	return nil
}

// AppendJSON appends the whole session as one compact JSON object in
// printable ASCII, with keys in sorted order, in plain JSON: the form the
// upstream sees. An empty session is {}.
func (s *Session) AppendJSON(buf []byte) []byte {
	if s.form == nil {
		return s.appendStored(buf)
	}
	members := s.members()
	plain := make(map[string]json.RawMessage, len(members))
	for k, v := range members {
		plain[k] = s.form.ToPlain(v)
	}
	return appendObject(buf, plain)
}

// appendStored appends the session in the codec's stored form.
func (s *Session) appendStored(buf []byte) []byte {
	if s.raw != nil {
		return append(buf, s.raw...)
	}
	return appendObject(buf, s.values)
}

// storedJSON returns the session in the codec's stored form, for sealing.
// The result must not be modified.
func (s *Session) storedJSON() []byte {
	if s.raw != nil {
		return s.raw
	}
	return s.appendStored(nil)
}

// String returns the session as plain JSON; see AppendJSON.
func (s *Session) String() string {
	if s.form == nil && s.raw != nil {
		// raw is never modified, so it can back the string as it is.
		return unsafe.String(unsafe.SliceData(s.raw), len(s.raw))
	}
	return string(s.AppendJSON(nil))
}

// stored returns a plain value in the codec's stored form.
func (s *Session) stored(plain json.RawMessage) json.RawMessage {
	if s.form == nil {
		return plain
	}
	return s.form.FromPlain(plain)
}

// plain returns a stored value as plain JSON.
func (s *Session) plain(stored json.RawMessage) json.RawMessage {
	if s.form == nil || stored == nil {
		return stored
	}
	return s.form.ToPlain(stored)
}

func (s *Session) touch() {
	s.members() // raw is about to go: the values must stand on their own
	s.modified = true
	s.accessed = true
	s.raw = nil
	s.sealed, s.opened = nil, nil
}

// touchKey records a change of one key.
func (s *Session) touchKey(key string) {
	s.touch()
	if s.cleared {
		return // everything is written anyway
	}
	if s.dirty == nil {
		s.dirty = map[string]struct{}{}
	}
	s.dirty[key] = struct{}{}
}

// touchAll records a change of the whole session.
func (s *Session) touchAll() {
	s.touch()
	s.cleared = true
	s.dirty = nil
}

func (s *Session) checkAvailable() error {
	if s.unavailable != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, s.unavailable)
	}
	return nil
}

// members returns the session's values, splitting the JSON it was opened
// from on first use: a request that only forwards or reissues the session
// never needs them one by one.
func (s *Session) members() map[string]json.RawMessage {
	if s.values == nil {
		// raw was checked whole when the session was opened, so it
		// splits; an empty map stands in should it not.
		s.values, _ = splitObject(s.raw)
		if s.values == nil {
			s.values = map[string]json.RawMessage{}
		}
	}
	return s.values
}

// sessionFromPayload builds the session a valid cookie carried. raw, if
// not nil, is the JSON values were parsed from, or will be (values nil),
// and must not be modified afterwards.
func sessionFromPayload(values map[string]json.RawMessage, created time.Time, form ValueForm, raw []byte) *Session {
	if values == nil && raw == nil {
		values = map[string]json.RawMessage{}
	}
	return &Session{values: values, created: created, form: form, raw: raw}
}
