package sessioncore

import "testing"

func TestSessionMatches(t *testing.T) {
	s := sessionWith(t, `{"user":"alice","role":"admin","roles":["editor","ops"],"n":42,"ok":true,"off":false,"none":null,"empty":"","list":[],"obj":{},"zero":0,"groups":[1,"two"]}`)
	tests := []struct {
		key    string
		values []string
		want   bool
	}{
		{"user", nil, true},
		{"missing", nil, false},
		{"none", nil, false},
		{"off", nil, false},
		{"empty", nil, false},
		{"list", nil, false},
		{"obj", nil, false},
		{"zero", nil, true},
		{"ok", nil, true},
		{"role", []string{"admin"}, true},
		{"role", []string{"editor", "admin"}, true},
		{"role", []string{"Admin"}, false},
		{"roles", []string{"ops"}, true},
		{"roles", []string{"admin"}, false},
		{"n", []string{"42"}, true},
		{"ok", []string{"true"}, true},
		{"groups", []string{"1"}, true},
		{"groups", []string{"two"}, true},
		{"obj", []string{"{}"}, false},
		{"missing", []string{"x"}, false},
	}
	for _, tt := range tests {
		if got := s.Matches(tt.key, tt.values...); got != tt.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tt.key, tt.values, got, tt.want)
		}
	}
	if text, ok := s.Text("user"); text != "alice" || !ok {
		t.Errorf("Text(user) = %q %v", text, ok)
	}
	if text, ok := s.Text("roles"); text != `["editor","ops"]` || !ok {
		t.Errorf("Text(roles) = %q %v", text, ok)
	}
	if _, ok := s.Text("none"); ok {
		t.Error("Text of null")
	}
}
