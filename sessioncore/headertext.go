package sessioncore

import "strings"

// What a session value may be when it leaves the gateway as header text.
//
// An identity header (X-Remote-User) is read by the upstream as the user's
// name, and must mean there exactly what the gateway's matcher saw. HTTP
// trims blanks around a header value; WSGI and CGI decode header bytes as
// Latin-1, so any non-ASCII byte arrives as another character; control
// characters are refused or rewritten on the way; bidirectional controls
// make one name display as another. A value with any of these is withheld
// rather than sent altered.

// The reasons an identity value is withheld, from the most to the least
// severe; each is a metric label value.
const (
	WithheldControl  = "control"   // a C0 control, DEL or a C1 control
	WithheldBidi     = "bidi"      // a bidirectional control (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069)
	WithheldNonASCII = "non_ascii" // any other character beyond ASCII
	WithheldBlank    = "blank"     // a leading or trailing space or tab
)

// WithheldReasons lists every reason IdentityWithheld gives.
var WithheldReasons = []string{WithheldControl, WithheldBidi, WithheldNonASCII, WithheldBlank}

// IdentityWithheld returns why text cannot be sent as an identity header
// value, or "" when the upstream will read it exactly as it is: printable
// ASCII, with no blank at either end. The most severe reason wins.
func IdentityWithheld(text string) string {
	// Blanks at the ends are trimmed by HTTP; anything else is scanned.
	inner := strings.Trim(text, " \t")
	reason := ""
	for _, r := range inner {
		switch {
		case r < 0x20 || r == 0x7f || 0x80 <= r && r <= 0x9f:
			return WithheldControl
		case isBidiControl(r):
			reason = WithheldBidi
		case r >= 0x80 && reason == "":
			reason = WithheldNonASCII
		}
	}
	if reason == "" && inner != text {
		reason = WithheldBlank
	}
	return reason
}

func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || 0x202a <= r && r <= 0x202e || 0x2066 <= r && r <= 0x2069
}

// HeaderSafe returns text with every C0 control and DEL replaced by a
// space, so that it can be written into any header or status line: a NUL
// would otherwise reach the client raw, and CR and LF already become
// spaces in net/http. Text without them comes back as it is.
func HeaderSafe(text string) string {
	i := strings.IndexFunc(text, isControlByte)
	if i < 0 {
		return text
	}
	b := []byte(text)
	for ; i < len(b); i++ {
		if b[i] < 0x20 || b[i] == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

func isControlByte(r rune) bool { return r < 0x20 || r == 0x7f }
