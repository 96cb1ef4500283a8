package sessioncore

import "testing"

func TestIdentityWithheld(t *testing.T) {
	tests := []struct {
		text, want string
	}{
		{"admin", ""},
		{"alice@example.com", ""},
		{"a b", ""},                         // a blank inside is read as sent
		{"[1,2]", ""},                       // a non-string value's JSON text
		{"", ""},                            // nothing to misread (the caller skips unset values)
		{" admin\t", WithheldBlank},         // HTTP trims it to "admin"
		{"admin ", WithheldBlank},           //
		{"\tadmin", WithheldBlank},          //
		{"a\x00b", WithheldControl},         // C0
		{"a\x7fb", WithheldControl},         // DEL
		{"x\u0085y", WithheldControl},       // C1 (NEL)
		{"\u00e4dmin \u202e", WithheldBidi}, // the example: non-ASCII, a blank, an override
		{"\u00e4dmin", WithheldNonASCII},    // Latin-1 decoding would change it
		{"adm\u202ein", WithheldBidi},       // right-to-left override
		{"adm\u2066in", WithheldBidi},       // isolate
		{"\u200fadmin", WithheldBidi},       // right-to-left mark
		{"J\u00fcrgen\u202e", WithheldBidi}, // the most severe reason wins
		{"\xff", WithheldNonASCII},          // not UTF-8
	}
	for _, tt := range tests {
		if got := IdentityWithheld(tt.text); got != tt.want {
			t.Errorf("IdentityWithheld(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestHeaderSafe(t *testing.T) {
	tests := []struct{ text, want string }{
		{"alice", "alice"},
		{"a\x00b", "a b"},
		{"a\r\nb", "a  b"},
		{"\x01\x1f\x7f", "   "},
		{"tab\there", "tab here"},
		{"\u00e4\u0085", "\u00e4\u0085"}, // not bytes below 0x20: UTF-8 is left alone
	}
	for _, tt := range tests {
		if got := HeaderSafe(tt.text); got != tt.want {
			t.Errorf("HeaderSafe(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
	if s := "unchanged"; HeaderSafe(s) != s || testing.AllocsPerRun(10, func() { HeaderSafe(s) }) != 0 {
		t.Error("a clean text is copied")
	}
}
