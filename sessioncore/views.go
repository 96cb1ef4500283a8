package sessioncore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Per-route views and write rules: what of the session a route's upstream
// sees in X-Session (and in the assertion), and which top-level keys it
// may change. The matcher, the placeholders and the forwarded headers
// always see the whole session.

// View limits the top-level keys the upstream is sent: with Send, only
// those; with Hide, all but those. At most one of the two is set.
type View struct {
	Send, Hide []string
}

// WriteRules limit the top-level keys the upstream may set, change or
// remove: with Writable, only those; with Readonly, all but those. At most
// one of the two is set. A replacement of the whole session
// (X-Session-Replace) keeps the protected keys as they were; a merge patch
// that would set, change or remove one is refused whole (one that leaves
// it exactly as it is passes).
type WriteRules struct {
	Writable, Readonly []string
}

// ErrProtectedKey means an upstream's change touches a key its route may
// not write.
var ErrProtectedKey = errors.New("the route's write rules do not let the upstream change this key")

func (v *View) check() error {
	if v == nil {
		return nil
	}
	if len(v.Send) > 0 && len(v.Hide) > 0 {
		return errors.New("set send or hide, not both")
	}
	return checkKeys(append(slices.Clone(v.Send), v.Hide...))
}

func (w *WriteRules) check() error {
	if w == nil {
		return nil
	}
	if len(w.Writable) > 0 && len(w.Readonly) > 0 {
		return errors.New("set writable or readonly, not both")
	}
	return checkKeys(append(slices.Clone(w.Writable), w.Readonly...))
}

func checkKeys(keys []string) error {
	for _, k := range keys {
		if k == "" {
			return errors.New("a session key is empty")
		}
	}
	return nil
}

// active reports whether the view hides anything.
func (v *View) active() bool { return v != nil && (len(v.Send) > 0 || len(v.Hide) > 0) }

// shows reports whether the view sends key.
func (v *View) shows(key string) bool {
	if len(v.Send) > 0 {
		return slices.Contains(v.Send, key)
	}
	return !slices.Contains(v.Hide, key)
}

// active reports whether the rules protect anything.
func (w *WriteRules) active() bool { return w != nil && (len(w.Writable) > 0 || len(w.Readonly) > 0) }

// allows reports whether the upstream may write key.
func (w *WriteRules) allows(key string) bool {
	if len(w.Writable) > 0 {
		return slices.Contains(w.Writable, key)
	}
	return !slices.Contains(w.Readonly, key)
}

// setSessionHeader sets the session header to the session as the route's
// view shows it.
func (g *Gateway) setSessionHeader(h map[string][]string, s *Session) {
	if !g.view.active() || s.IsNull() {
		g.protocol.SetSessionHeader(h, s)
		return
	}
	members := s.members()
	shown := make(map[string]json.RawMessage, len(members))
	for k, v := range members {
		if g.view.shows(k) {
			shown[k] = s.plain(v)
		}
	}
	h[g.protocol.SessionHeader()] = []string{string(appendObject(nil, shown))}
}

// enforceWriteRules checks a mutation against the route's write rules: a
// merge patch that touches a protected key is refused, naming the key; a
// replacement keeps the protected keys of s as they are, and the keys the
// route's view hides (the upstream cannot send back what it never saw).
func (g *Gateway) enforceWriteRules(s *Session, m *Mutation) error {
	if !g.rules.active() && !g.view.active() || m.IsEmpty() {
		return nil
	}
	if g.rules.active() {
		for _, patch := range m.updates {
			for k, v := range patch {
				if !g.rules.allows(k) && changes(s, k, v) {
					return &MutationError{Header: g.protocol.prefix + updateSuffix, Err: fmt.Errorf("key %q: %w", k, ErrProtectedKey)}
				}
			}
		}
	}
	if m.hasReplace && !s.IsNull() {
		for k := range m.replace {
			if g.keeps(k) {
				delete(m.replace, k)
			}
		}
		for k, v := range s.members() {
			if g.keeps(k) {
				m.replace[k] = s.plain(v)
			}
		}
	}
	return nil
}

// keeps reports whether a replacement of the session carries key over
// unchanged: a key the write rules protect, or one the view hides.
func (g *Gateway) keeps(key string) bool {
	return g.rules.active() && !g.rules.allows(key) || g.view.active() && !g.view.shows(key)
}

// changes reports whether a merge patch's value v for key would change s:
// a patch that leaves a protected key exactly as it is breaks no rule.
func changes(s *Session, key string, v json.RawMessage) bool {
	old, ok := s.members()[key]
	if isNull(v) {
		return ok
	}
	if !ok {
		return true
	}
	plain := s.plain(old)
	if len(plain) > 0 && plain[0] == '{' {
		// A merged object comes out sorted: compare it sorted too.
		plain = mergePatch(plain, json.RawMessage(`{}`))
	}
	return !bytes.Equal(mergePatch(plain, v), plain)
}

// enforceAdoptRules is enforceWriteRules for an upstream's own session
// cookie, which replaces the session: the protected keys carry over.
func (g *Gateway) enforceAdoptRules(s *Session, values map[string]json.RawMessage) map[string]json.RawMessage {
	if !g.rules.active() && !g.view.active() || s.IsNull() {
		return values
	}
	out := make(map[string]json.RawMessage, len(values))
	for k, v := range values {
		if !g.keeps(k) {
			out[k] = v
		}
	}
	for k, v := range s.members() {
		if g.keeps(k) {
			out[k] = v
		}
	}
	return out
}
