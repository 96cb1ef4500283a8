package sessioncore

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// takeResponseCookie removes every Set-Cookie line for the session cookie
// from a response's headers, as an upstream that manages the same cookie
// (a Flask app sharing the secret) writes them, and returns the session
// the last one carries, in the stored form, for Session.Adopt. A deleting
// line (empty value, Max-Age=0 or an Expires in the past) gives an empty
// session. found is false when there is no such line. A cookie that does
// not open is an error: the upstream's state would otherwise be lost.
//
// For a SignedPair codec the lines of the signature cookie go too, and the
// value opens with the signature the last of them carries: the gateway
// writes the pair back itself. A signature line alone (an app re-signing a
// fallback key's cookie) is dropped: it changes nothing of the session.
func (m *Manager) takeResponseCookie(h http.Header) (values map[string]json.RawMessage, found bool, err error) {
	lines := h["Set-Cookie"]
	signature := m.signatureCookie()
	var last, lastSig *http.Cookie
	kept := lines[:0:0]
	for _, line := range lines {
		c, perr := http.ParseSetCookie(line)
		switch {
		case perr != nil:
			kept = append(kept, line)
		case c.Name == m.config.CookieName:
			last = c
		case signature != "" && c.Name == signature:
			lastSig = c
		default:
			kept = append(kept, line)
		}
	}
	if last == nil && lastSig == nil {
		return nil, false, nil
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
	} else {
		h["Set-Cookie"] = kept
	}
	if last == nil {
		return nil, false, nil
	}
	if last.Value == "" || last.MaxAge < 0 || (!last.Expires.IsZero() && last.Expires.Before(m.now())) {
		return map[string]json.RawMessage{}, true, nil
	}
	if m.codec == nil {
		return nil, true, errors.New("no secret key is configured")
	}
	value := last.Value
	if signature != "" {
		sig := ""
		if lastSig != nil {
			sig = lastSig.Value
		}
		value += PairSeparator + sig
	}
	s, outcome, err := m.decode(value)
	if err != nil {
		return nil, true, fmt.Errorf("the upstream's session cookie does not open (%s): %w", outcome, err)
	}
	return s.members(), true, nil
}
