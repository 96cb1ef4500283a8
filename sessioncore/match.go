package sessioncore

import (
	"encoding/json"
)

// Has reports whether the session holds key with a value that counts as
// set: present and not null, false, "", [] or {}.
func (s *Session) Has(key string) bool {
	v, ok := s.Get(key)
	if !ok {
		return false
	}
	switch string(v) {
	case "null", "false", `""`, "[]", "{}":
		return false
	}
	return true
}

// Matches reports whether the session's value under key equals one of
// wanted: a string value compares as the string, any other scalar as its
// JSON text (42, true), and an array matches when any of its elements
// does. With no wanted values it is Has.
func (s *Session) Matches(key string, wanted ...string) bool {
	if len(wanted) == 0 {
		return s.Has(key)
	}
	v, ok := s.Get(key)
	if !ok {
		return false
	}
	if len(v) > 0 && v[0] == '[' {
		var items []json.RawMessage
		if json.Unmarshal(v, &items) != nil {
			return false
		}
		for _, item := range items {
			if scalarMatches(item, wanted) {
				return true
			}
		}
		return false
	}
	return scalarMatches(v, wanted)
}

func scalarMatches(v json.RawMessage, wanted []string) bool {
	text := string(v)
	if len(v) > 0 && v[0] == '"' {
		if json.Unmarshal(v, &text) != nil {
			return false
		}
	} else if len(v) > 0 && v[0] == '{' {
		return false // objects never equal a word
	}
	for _, w := range wanted {
		if text == w {
			return true
		}
	}
	return false
}

// Text returns the value under key as a header or placeholder shows it:
// a string as the string itself, anything else as its JSON text; ok is
// false when the key is absent or null.
func (s *Session) Text(key string) (text string, ok bool) {
	v, ok := s.Get(key)
	if !ok || string(v) == "null" {
		return "", false
	}
	return ValueText(v), true
}

// ValueText returns a plain JSON value as text: a string as the string
// itself, anything else as its JSON text.
func ValueText(v json.RawMessage) string {
	if len(v) > 0 && v[0] == '"' {
		var str string
		if json.Unmarshal(v, &str) == nil {
			return str
		}
	}
	return string(v)
}
