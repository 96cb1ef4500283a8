package caddymodule

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// placeholderPrefix is the prefix of the placeholders that expose the
// session's keys to later handlers: {http.session.<key>}.
const placeholderPrefix = "http.session."

// setPlaceholders exposes each of the session's top-level keys as
// {http.session.<key>}: a string value as the string itself, any other
// value as its JSON text. Placeholders of keys the session no longer has
// are removed.
func setPlaceholders(repl *caddy.Replacer, s *sessioncore.Session) {
	repl.DeleteByPrefix(placeholderPrefix)
	for _, key := range s.Keys() {
		raw, _ := s.Get(key)
		repl.Set(placeholderPrefix+key, placeholderValue(raw))
	}
}

// placeholderValue is a session value as a placeholder shows it. It is
// decoded only when a placeholder is actually used: most requests use none.
type placeholderValue json.RawMessage

// String implements fmt.Stringer, which caddy.ToString calls.
func (v placeholderValue) String() string {
	if len(v) > 0 && v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}
