package sessioncore

import (
	"encoding/json"
	"errors"
)

// ErrConflictingReplace means an upstream sent more than one whole-session
// replacement in one response, so which one it meant is unknown.
var ErrConflictingReplace = errors.New("more than one replacement in one response")

// Mutation is the change an upstream asked for in one response: an optional
// replacement of the whole session, then any number of JSON Merge Patches
// (RFC 7386), applied in order. A Mutation is validated as it is built, so
// applying it cannot fail halfway.
type Mutation struct {
	replace    map[string]json.RawMessage
	hasReplace bool
	updates    []map[string]json.RawMessage
	renew      bool
	revoke     Revoke
}

// Revoke is what an upstream asks to revoke of the session's user: every
// other session (RevokeOthers, "log out my other devices") or every one,
// this one too (RevokeAll).
type Revoke string

// The values of the revoke header.
const (
	RevokeNone   Revoke = ""
	RevokeOthers Revoke = "others"
	RevokeAll    Revoke = "all"
)

// SetRevoke asks for the user's other sessions, or all of them, to be
// revoked once the rest of the mutation is applied.
func (m *Mutation) SetRevoke(r Revoke) { m.revoke = r }

// Revoke returns what the mutation asks to revoke.
func (m *Mutation) Revoke() Revoke {
	if m == nil {
		return RevokeNone
	}
	return m.revoke
}

// SetRenew asks for the session to get a new ID (see Session.Renew).
func (m *Mutation) SetRenew() { m.renew = true }

// SetReplace sets the replacement session from a JSON object.
func (m *Mutation) SetReplace(raw []byte) error {
	if m.hasReplace {
		return ErrConflictingReplace
	}
	members, err := parseObject(raw)
	if err != nil {
		return err
	}
	if err := checkReservedKeys(members); err != nil {
		return err
	}
	m.replace, m.hasReplace = members, true
	return nil
}

// AddUpdate appends a merge patch, a JSON object, to be applied after any
// replacement and after the patches added before it.
func (m *Mutation) AddUpdate(raw []byte) error {
	members, err := parseObject(raw)
	if err != nil {
		return err
	}
	if err := checkReservedKeys(members); err != nil {
		return err
	}
	m.updates = append(m.updates, members)
	return nil
}

// IsEmpty reports whether the mutation asks for no change at all. A nil
// *Mutation is empty.
func (m *Mutation) IsEmpty() bool {
	return m == nil || !m.hasReplace && len(m.updates) == 0 && !m.renew && m.revoke == RevokeNone
}

// Apply makes the change to s. A non-empty mutation marks the session
// modified even when it leaves the values as they were, as any write does in
// Flask. A null session refuses the change and is left untouched.
func (s *Session) Apply(m *Mutation) error {
	if m.IsEmpty() {
		return nil
	}
	if err := s.checkAvailable(); err != nil {
		return err
	}
	if m.hasReplace {
		s.values = make(map[string]json.RawMessage, len(m.replace))
		for k, v := range m.replace {
			s.values[k] = s.stored(v)
		}
		s.touchAll()
	}
	for _, patch := range m.updates {
		s.members()
		for k, v := range patch {
			if isNull(v) {
				delete(s.values, k)
				continue
			}
			// Patch in plain JSON, store in the codec's form; values the
			// patch does not name keep their exact stored bytes.
			s.values[k] = s.stored(mergePatch(s.plain(s.values[k]), v))
		}
		for k := range patch {
			s.touchKey(k)
		}
	}
	if m.renew {
		s.renew = true
	}
	s.touch()
	return nil
}
