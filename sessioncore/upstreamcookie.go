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
func (m *Manager) takeResponseCookie(h http.Header) (values map[string]json.RawMessage, found bool, err error) {
	lines := h["Set-Cookie"]
	var last *http.Cookie
	kept := lines[:0:0]
	for _, line := range lines {
		c, perr := http.ParseSetCookie(line)
		if perr != nil || c.Name != m.config.CookieName {
			kept = append(kept, line)
			continue
		}
		last = c
	}
	if last == nil {
		return nil, false, nil
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
	} else {
		h["Set-Cookie"] = kept
	}
	if last.Value == "" || last.MaxAge < 0 || (!last.Expires.IsZero() && last.Expires.Before(m.now())) {
		return map[string]json.RawMessage{}, true, nil
	}
	if m.codec == nil {
		return nil, true, errors.New("no secret key is configured")
	}
	s, outcome, err := m.decode(last.Value)
	if err != nil {
		return nil, true, fmt.Errorf("the upstream's session cookie does not open (%s): %w", outcome, err)
	}
	return s.members(), true, nil
}
