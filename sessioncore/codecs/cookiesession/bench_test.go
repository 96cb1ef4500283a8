package cookiesession

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// BenchmarkOpenRefresh opens a cookie holding a 200-byte session and
// reissues it (a permanent session, refreshed on each request), with the
// cookie-session codec and, beside it, the default securecookie codec.
// (sessioncore's own codec table cannot import this package.)
func BenchmarkOpenRefresh(b *testing.B) {
	session := `{"_permanent":true,"session_id":"0123456789abcdef0123456789abcdef","user_id":42,"name":"alice","_csrf_token":"Hk0Sx8VZ5a0nAqL2mW3dVg8n2mYjM8mU0lT4ZqkR8gE=","pad":"` + strings.Repeat("x", 200-160) + `"}`
	secret := []byte("a-secret-key-base-of-sixty-four-bytes-0123456789abcdef0123456789")
	for _, name := range []string{"securecookie", Name} {
		b.Run(name, func(b *testing.B) {
			info, _ := sessioncore.LookupCodec(name)
			codec, err := info.New(secret)
			if err != nil {
				b.Fatal(err)
			}
			cfg := sessioncore.DefaultConfig()
			cfg.CookieName = DefaultCookieName
			cfg.MaxCookieParts = 1
			m, err := sessioncore.NewManager(cfg, codec)
			if err != nil {
				b.Fatal(err)
			}
			value, err := codec.Encode(cfg.CookieName, sessioncore.Payload{JSON: []byte(session), Issued: time.Now(), Created: time.Now(), Expires: time.Now().Add(time.Hour)})
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			cookie := cfg.CookieName + "=" + value
			if sig := sessioncore.SignatureCookie(codec, cfg.CookieName); sig != "" {
				v, s, _ := sessioncore.SplitPair(value)
				cookie = cfg.CookieName + "=" + v + "; " + sig + "=" + s
			}
			r.Header.Set("Cookie", cookie)
			b.ReportAllocs()
			for b.Loop() {
				s, outcome := m.Open(r)
				if outcome != sessioncore.OutcomeValid {
					b.Fatal(outcome)
				}
				h := http.Header{}
				if action, err := m.Save(context.Background(), s, h); err != nil || action != sessioncore.CookieSet {
					b.Fatal(action, err)
				}
			}
		})
	}
}
