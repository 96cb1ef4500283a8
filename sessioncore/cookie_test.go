package sessioncore

import (
	"strings"
	"testing"
)

func TestCookieNamePrefixes(t *testing.T) {
	codec, _ := NewSecureCookieCodec(testSecret)
	secure := func(c *Config) { c.CookieSecure = true }
	tests := []struct {
		name    string
		cookie  string
		change  func(*Config)
		wantErr string // "" : accepted
	}{
		{"__Host- with its attributes", "__Host-sess", secure, ""},
		{"__Host- partitioned (Secure implied)", "__Host-sess", func(c *Config) { c.CookiePartitioned = true }, ""},
		{"__Host- without Secure", "__Host-sess", func(*Config) {}, "__Host- cookies must be Secure"},
		{"__Host- on another path", "__Host-sess", func(c *Config) { secure(c); c.CookiePath = "/app" }, "Path=/"},
		{"__Host- with a domain", "__Host-sess", func(c *Config) { secure(c); c.CookieDomain = "example.com" }, "no Domain"},
		{"__host- in lower case", "__host-sess", func(*Config) {}, "__host- cookies must be Secure"},
		{"__HOST- in upper case", "__HOST-sess", func(c *Config) { secure(c); c.CookiePath = "/x" }, "Path=/"},
		{"__Secure- with Secure", "__Secure-sess", secure, ""},
		{"__Secure- with a domain and a path", "__Secure-sess", func(c *Config) { secure(c); c.CookieDomain = "example.com"; c.CookiePath = "/x" }, ""},
		{"__Secure- without Secure", "__Secure-sess", func(*Config) {}, "must be Secure"},
		{"__secure- in lower case", "__secure-sess", func(*Config) {}, "must be Secure"},
		{"__Http- without HttpOnly", "__Http-sess", func(c *Config) { secure(c); c.CookieHTTPOnly = false }, "HttpOnly"},
		{"__Host-Http- with its attributes", "__Host-Http-sess", secure, ""},
		{"__Host-Http- without HttpOnly", "__Host-Http-sess", func(c *Config) { secure(c); c.CookieHTTPOnly = false }, "HttpOnly"},
		{"no prefix", "session", func(*Config) {}, ""},
		{"a prefix not at the start", "my__Host-sess", func(*Config) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.CookieName = tt.cookie
			tt.change(&cfg)
			_, err := NewManager(cfg, codec)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("accepted")
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q does not say %q", err, tt.wantErr)
			}
		})
	}
}
