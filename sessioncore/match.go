package sessioncore

import (
	"bytes"
	"encoding/json"
)

// Has reports whether the session holds key with a value that counts as
// set: present and not null, false, "", [] or {}.
func (s *Session) Has(key string) bool {
	v, ok := s.Get(key)
	return ok && truthyValue(v)
}

// truthyValue reports whether a value counts as set: not null, false, an
// empty string, array or object.
func truthyValue(v json.RawMessage) bool {
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
	if plain, ok := plainString(v); ok {
		for _, w := range wanted {
			if string(plain) == w { // compared without a copy
				return true
			}
		}
		return false
	}
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

// TextIs reports whether the value under key reads as text (see Text),
// without copying a plain string: for a check on every request.
func (s *Session) TextIs(key, text string) bool {
	v, ok := s.Get(key)
	if !ok || string(v) == "null" {
		return false
	}
	if plain, ok := plainString(v); ok {
		return string(plain) == text
	}
	return ValueText(v) == text
}

// ValueText returns a plain JSON value as text: a string as the string
// itself, anything else as its JSON text.
func ValueText(v json.RawMessage) string {
	if plain, ok := plainString(v); ok {
		return string(plain)
	}
	if len(v) > 0 && v[0] == '"' {
		var str string
		if json.Unmarshal(v, &str) == nil {
			return str
		}
	}
	return string(v)
}

// plainString returns the text of a JSON string without escapes (the
// usual user ID or role) as the bytes between its quotes: no decoding
// needed.
func plainString(v json.RawMessage) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' || bytes.IndexByte(v, '\\') >= 0 {
		return nil, false
	}
	return v[1 : len(v)-1], true
}
