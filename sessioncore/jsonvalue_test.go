package sessioncore

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestQuotedLenIsTheLengthAppendStringWrites(t *testing.T) {
	for _, s := range []string{"", "user", `a"b\c`, "\n\r\t\b\f", "\x01\x1f\x7f", "Zoë", "😀", "\uffff", strings.Repeat("\x01", 300)} {
		if got, want := quotedLen(s), len(appendString(nil, s)); got != want {
			t.Errorf("quotedLen(%q) = %d, want %d", s, got, want)
		}
	}
}

// max_session_size counts keys as they are written: escapes included.
func TestSessionSizeCountsEscapedKeys(t *testing.T) {
	s := NewSession()
	key := strings.Repeat("\x01", 300)
	must(t, s.Set(key, json.RawMessage(`1`)))
	if got, want := s.jsonSize(), len(s.String()); got != want {
		t.Errorf("jsonSize = %d, the JSON is %d bytes", got, want)
	}
}
