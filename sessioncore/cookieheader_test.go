package sessioncore

import "testing"

func TestWithoutCookies(t *testing.T) {
	drop := func(name string) bool { return name == "session" || name == "session.1" }
	for _, tc := range []struct {
		line, want string
		changed    bool
	}{
		{"a=1", "a=1", false},
		{"a=1; b=2", "a=1; b=2", false},
		{"a=1;b=2", "a=1;b=2", false}, // unchanged lines keep their spacing
		{"session=x", "", true},
		{"session=x; session.1=y", "", true},
		{"a=1; session=x", "a=1", true},
		{"session=x; a=1", "a=1", true},
		{" a=1 ;session=x;b=2 ", "a=1; b=2", true},
		{"a=1;b=2; session=x; c=3", "a=1;b=2; c=3", true},
		{"a=1;;b=2", "a=1; b=2", true}, // empty parts go
		{"a=1;", "a=1", true},
		{"", "", true},
		{"sessionx=1; session", "sessionx=1", true}, // a bare name is the cookie too
		{"a=1; session =x", "a=1", true},            // parsers trim the name
		{"a=1; session\t= x; session.1 =y", "a=1", true},
		{"a=1; \x1csession=x; \u00a0session.1=y", "a=1", true}, // Python's blanks and Unicode ones too
	} {
		got, changed := withoutCookies(tc.line, drop)
		if got != tc.want || changed != tc.changed {
			t.Errorf("withoutCookies(%q) = %q, %v; want %q, %v", tc.line, got, changed, tc.want, tc.changed)
		}
	}
}
