package sessioncore

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
)

// A session's private values are kept for the gateway itself, such as the
// tokens of an OpenID Connect login: a server-side store keeps them with
// the session, so they are renewed, revoked, expired and deleted with it,
// but they are never among its values, so no header, placeholder,
// matcher, view, assertion or listing shows them, and no upstream can
// write them. The cookie store does not keep them.

// PrivatePrefix begins the store field of each private value: a session
// value whose key begins with it could not be told from one.
const PrivatePrefix = "\x00"

// ErrReservedKey is returned for a session key that begins with
// PrivatePrefix (U+0000): such keys are the gateway's own.
var ErrReservedKey = errors.New("session keys that begin with U+0000 are reserved for the gateway")

// reservedKey reports whether key is one only the gateway may write.
func reservedKey(key string) bool { return strings.HasPrefix(key, PrivatePrefix) }

// checkReservedKeys refuses members that name a reserved key.
func checkReservedKeys(members map[string]json.RawMessage) error {
	for k := range members {
		if reservedKey(k) {
			return ErrReservedKey
		}
	}
	return nil
}

// Private returns the private value name, as it was set. The returned
// bytes must not be modified.
func (s *Session) Private(name string) (json.RawMessage, bool) {
	v, ok := s.private[name]
	return v, ok
}

// SetPrivate sets the private value name to value, one valid JSON value,
// or removes it when value is nil, and marks the session modified so that
// it is saved. Only a server-side store keeps private values.
func (s *Session) SetPrivate(name string, value json.RawMessage) error {
	if err := s.checkAvailable(); err != nil {
		return err
	}
	value, err := normalizePrivate(name, value)
	if err != nil {
		return err
	}
	if _, ok := s.private[name]; !ok && value == nil {
		return nil
	}
	s.putPrivate(name, value)
	if s.privateDirty == nil {
		s.privateDirty = map[string]struct{}{}
	}
	s.privateDirty[name] = struct{}{}
	// The response depends on the session now: it varies by cookie.
	s.modified, s.accessed = true, true
	return nil
}

// normalizePrivate returns a private value in its stored form; nil stays
// nil (a removal).
func normalizePrivate(name string, value json.RawMessage) (json.RawMessage, error) {
	if value == nil {
		return nil, nil
	}
	normalized, err := normalizeJSON(value)
	if err != nil {
		return nil, fmt.Errorf("private value %q: %w", name, err)
	}
	return normalized, nil
}

// putPrivate sets the private value name, or removes it when v is nil,
// without marking anything.
func (s *Session) putPrivate(name string, v json.RawMessage) {
	if v == nil {
		delete(s.private, name)
		return
	}
	if s.private == nil {
		s.private = map[string]json.RawMessage{}
	}
	s.private[name] = v
}

// dropPrivate removes every private value.
func (s *Session) dropPrivate() {
	for name := range s.private {
		if s.privateDirty == nil {
			s.privateDirty = map[string]struct{}{}
		}
		s.privateDirty[name] = struct{}{}
	}
	s.private = nil
}

// takeStoredPrivate replaces the private values this request did not
// change with those of stored, the session as its store holds it now:
// another request may have saved newer ones since this one loaded it.
func (s *Session) takeStoredPrivate(stored map[string]json.RawMessage) {
	for k, v := range stored {
		if !reservedKey(k) {
			continue
		}
		name := k[len(PrivatePrefix):]
		if _, changed := s.privateDirty[name]; !changed {
			s.putPrivate(name, v)
		}
	}
}

// splitPrivate moves the private values out of values loaded from a
// store.
func (s *Session) splitPrivate() {
	for k, v := range s.values {
		if reservedKey(k) {
			s.putPrivate(k[len(PrivatePrefix):], v)
			delete(s.values, k)
		}
	}
}

// storedMembers returns the session's values and its private values, as
// a store keeps them.
func (s *Session) storedMembers() map[string]json.RawMessage {
	members := s.members()
	if len(s.private) == 0 {
		return members
	}
	all := maps.Clone(members)
	for name, v := range s.private {
		all[PrivatePrefix+name] = v
	}
	return all
}

// addPrivateChanges adds to c the private values changed since the
// session was opened.
func (s *Session) addPrivateChanges(c *Changes) {
	for name := range s.privateDirty {
		if v, ok := s.private[name]; ok {
			if c.Set == nil {
				c.Set = map[string]json.RawMessage{}
			}
			c.Set[PrivatePrefix+name] = v
		} else {
			c.Deleted = append(c.Deleted, PrivatePrefix+name)
		}
	}
}
