package django

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// BenchmarkManager is sessioncore's BenchmarkManager for the django codec,
// beside securecookie (sessioncore's own benchmark cannot import this
// package): open, and open + refresh (a permanent session reissued with a
// new timestamp), of a session of about 200 bytes, shaped as sessioncore's
// benchSession. "afresh" opens a different value each time, 4096 in turn,
// more than the Manager remembers, so every open verifies and decodes;
// "remembered" sends the same value, as a browser does until it is
// reissued.
func BenchmarkManager(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	base := `{"_permanent":true,"role":"editor","user_id":"u-12345","pad":""}`
	session := strings.Replace(base, `"pad":""`, `"pad":"`+strings.Repeat("x", 200-len(base))+`"`, 1)
	secret := []byte("bench-secret-0123456789abcdef0123456789abcdef")
	fallback := []byte("bench-fallback-secret-0123456789abcdef0123456789")
	for _, name := range []string{sessioncore.SecureCookieCodecName, Name} {
		info, _ := sessioncore.LookupCodec(name)
		codec, err := info.New(secret, fallback)
		if err != nil {
			b.Fatal(err)
		}
		cfg := sessioncore.DefaultConfig()
		manager, err := sessioncore.NewManager(cfg, codec, sessioncore.WithClock(func() time.Time { return now }))
		if err != nil {
			b.Fatal(err)
		}
		requests := make([]*http.Request, 4096)
		for i := range requests {
			issued := now.Add(-time.Duration(i) * time.Second)
			value, err := codec.Encode(cfg.CookieName, sessioncore.Payload{JSON: []byte(session), Issued: issued, Created: issued})
			if err != nil {
				b.Fatal(err)
			}
			requests[i], _ = http.NewRequest(http.MethodGet, "/", nil)
			requests[i].Header.Set("Cookie", "theme=dark; "+cfg.CookieName+"="+value)
		}
		for _, mode := range []string{"afresh", "remembered"} {
			next := func(i int) *http.Request {
				if mode == "remembered" {
					return requests[0]
				}
				return requests[i%len(requests)]
			}
			b.Run(fmt.Sprintf("%s/200B/%s/open", name, mode), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if s, o := manager.Open(next(i)); o != sessioncore.OutcomeValid || s.IsNew() {
						b.Fatal(o)
					}
					i++
				}
			})
			b.Run(fmt.Sprintf("%s/200B/%s/open+refresh", name, mode), func(b *testing.B) {
				b.ReportAllocs()
				h := http.Header{}
				i := 0
				for b.Loop() {
					s, _ := manager.Open(next(i))
					clear(h)
					if action, err := manager.Save(context.Background(), s, h); err != nil || action != sessioncore.CookieSet {
						b.Fatal(action, err)
					}
					i++
				}
			})
		}
	}
}
