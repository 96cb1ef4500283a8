package caddymodule

import (
	"testing"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// TestCodecsDefaultCookieName: the django codec, registered by codecs.go,
// names the cookie as Django does unless the config names it.
func TestCodecsDefaultCookieName(t *testing.T) {
	for _, c := range []struct{ codec, name, want string }{
		{"django", "", "sessionid"},
		{"django", "mysession", "mysession"},
		{"flask", "", sessioncore.DefaultCookieName},
		{"", "", sessioncore.DefaultCookieName},
	} {
		h := &Handler{Codec: c.codec, CookieName: c.name}
		cfg, err := h.managerConfig()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.CookieName != c.want {
			t.Errorf("codec %q, cookie_name %q: %q, want %q", c.codec, c.name, cfg.CookieName, c.want)
		}
		if c.codec == "django" && cfg.MaxCookieParts != 1 {
			t.Errorf("the django cookie is split: %d parts", cfg.MaxCookieParts)
		}
	}
}
