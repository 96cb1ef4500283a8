package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

const testSecretLiteral = "0123456789abcdef0123456789abcdef"

func TestUnmarshalCaddyfile(t *testing.T) {
	no := false
	input := `session {
		secret {env.SESSION_SECRET}
		secret_fallbacks {env.OLD1} ` + testSecretLiteral + `
		cookie_name sid
		cookie_domain example.com
		cookie_path /app
		cookie_httponly false
		cookie_secure true
		cookie_samesite Strict
		cookie_partitioned true
		lifetime 12h
		refresh_each_request false
		header_prefix X-Sess
	}`
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	want := Handler{
		Secret:             "{env.SESSION_SECRET}",
		SecretFallbacks:    []string{"{env.OLD1}", testSecretLiteral},
		CookieName:         "sid",
		CookieDomain:       "example.com",
		CookiePath:         "/app",
		CookieHTTPOnly:     &no,
		CookieSecure:       true,
		CookieSameSite:     "strict",
		CookiePartitioned:  true,
		Lifetime:           caddy.Duration(12 * time.Hour),
		RefreshEachRequest: &no,
		HeaderPrefix:       "X-Sess",
	}
	if got, exp := describe(h), describe(want); got != exp {
		t.Errorf("parsed\n%s\nwant\n%s", got, exp)
	}
}

func describe(h Handler) string {
	b := func(p *bool) string {
		if p == nil {
			return "unset"
		}
		if *p {
			return "true"
		}
		return "false"
	}
	return strings.Join([]string{h.Secret, strings.Join(h.SecretFallbacks, ","), h.CookieName, h.CookieDomain, h.CookiePath,
		b(h.CookieHTTPOnly), b(&h.CookieSecure), h.CookieSameSite, b(&h.CookiePartitioned),
		time.Duration(h.Lifetime).String(), b(h.RefreshEachRequest), h.HeaderPrefix}, "\n")
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	tests := []struct {
		name, input, errHas string
	}{
		{"missing secret", "session {\n cookie_name x\n}", "secret is required"},
		{"short literal secret", "session {\n secret tooshort\n}", "secret is 8 bytes long; it must be at least 32, at Testfile:2"},
		{"short literal fallback", "session {\n secret {env.S}\n secret_fallbacks " + testSecretLiteral + " short\n}", "secret_fallbacks is 5 bytes long"},
		{"unknown subdirective", "session {\n secret {env.S}\n cookie_colour blue\n}", `unrecognized session subdirective "cookie_colour", at Testfile:3`},
		{"bad bool", "session {\n secret {env.S}\n cookie_secure yes-please\n}", `cookie_secure must be true or false, not "yes-please", at Testfile:3`},
		{"bad samesite", "session {\n secret {env.S}\n cookie_samesite sometimes\n}", "cookie_samesite must be lax, strict or none"},
		{"bad lifetime", "session {\n secret {env.S}\n lifetime forever\n}", "lifetime must be a positive duration"},
		{"negative lifetime", "session {\n secret {env.S}\n lifetime -1h\n}", "lifetime must be a positive duration"},
		{"bad header prefix", "session {\n secret {env.S}\n header_prefix \"X Session\"\n}", "header_prefix"},
		{"relative path", "session {\n secret {env.S}\n cookie_path app\n}", "cookie path must start with /, not \"app\", at Testfile:3"},
		{"duplicate", "session {\n secret {env.S}\n secret {env.T}\n}", "secret specified more than once"},
		{"too many args", "session {\n secret {env.S}\n cookie_name a b\n}", "wrong argument count"},
		{"inline argument", "session foo {\n secret {env.S}\n}", "wrong argument count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.errHas)
			}
			if strings.Contains(err.Error(), "tooshort") {
				t.Errorf("the error reveals the secret: %v", err)
			}
		})
	}
}

func TestMaxCookieBytesSpellings(t *testing.T) {
	tests := []struct {
		arg  string
		want int // 0: refused
	}{
		{"4096", 4096},
		{"4KiB", 4096},
		{"4kib", 4096},
		{"6kb", 6000},
		{"6KB", 6000},
		{"6k", 6000},
		{"12KiB", 12288},
		{"512", 512},
		{"64KiB", 65536},
		{"511", 0},
		{"65KiB", 0},
		{"0", 0},
		{"-4096", 0},
		{"lots", 0},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("session {\n secret {env.S}\n max_cookie_bytes " + tt.arg + "\n}"))
			switch {
			case tt.want == 0 && err == nil:
				t.Errorf("accepted as %d", h.MaxCookieBytes)
			case tt.want == 0 && !strings.Contains(err.Error(), "max_cookie_bytes must be a size from 512 to 65536 bytes"):
				t.Errorf("error %q does not give the range", err)
			case tt.want != 0 && (err != nil || h.MaxCookieBytes != tt.want):
				t.Errorf("got %d, %v; want %d", h.MaxCookieBytes, err, tt.want)
			}
		})
	}
}
