package sessioncore

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// benchSession returns a session JSON of about size bytes: a user, a role,
// a permanent flag and a padding string, like a typical login session.
func benchSession(size int) string {
	base := `{"_permanent":true,"role":"editor","user_id":"u-12345","pad":""}`
	return strings.Replace(base, `"pad":""`, `"pad":"`+strings.Repeat("x", max(size-len(base), 0))+`"`, 1)
}

// benchCookie seals session as the cookie's writer would: the gateway for
// securecookie; for flask, Flask itself, whose zlib (Python's, at its
// default level 6) compresses like compress/zlib at level 6.
func benchCookie(c Codec, session string, now time.Time) (string, error) {
	if _, ok := c.(*FlaskCodec); !ok {
		return c.Encode("session", Payload{JSON: []byte(session), Issued: now, Created: now})
	}
	var z bytes.Buffer
	w, _ := zlib.NewWriterLevel(&z, 6)
	_, _ = w.Write([]byte(session))
	_ = w.Close()
	payload := "." + b64.EncodeToString(z.Bytes())
	if len(z.Bytes()) >= len(session)-1 {
		payload = b64.EncodeToString([]byte(session))
	}
	return c.Encode("session", Payload{Issued: now, Sealed: []byte(payload)})
}

type benchCodec struct {
	name string
	make func(fallbacks int) (Codec, error)
}

var benchCodecs = []benchCodec{
	{"securecookie", func(n int) (Codec, error) {
		var fb [][]byte
		for i := range n {
			fb = append(fb, []byte(fmt.Sprintf("fallback-secret-%d-0123456789abcdef0123456789", i)))
		}
		return NewSecureCookieCodec(testSecret, fb...)
	}},
	{"flask", func(n int) (Codec, error) {
		var fb [][]byte
		for i := range n {
			fb = append(fb, []byte(fmt.Sprintf("fallback-secret-%d", i)))
		}
		return NewFlaskCodec(testSecret, fb...)
	}},
}

// BenchmarkManager measures what the gateway does per request with the
// cookie: open only (a read-only, non-refreshed request), open + refresh (a
// permanent session reissued with a new timestamp), and open + mutate +
// save (an upstream change), each opening the cookie afresh; and open and
// open + refresh of a value the Manager remembers (the usual case: a
// browser sends the same cookie until it is reissued). "fallbacks" is how many fallback keys are
// configured; the cookie is always sealed with the current key.
func BenchmarkManager(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	for _, codec := range benchCodecs {
		for _, size := range []int{200, 1024, 2048} {
			for _, fallbacks := range []int{1, 3} {
				c, err := codec.make(fallbacks)
				if err != nil {
					b.Fatal(err)
				}
				clock := WithClock(func() time.Time { return now })
				manager, err := NewManager(DefaultConfig(), c, clock, withoutOpenCache())
				if err != nil {
					b.Fatal(err)
				}
				remembering, _ := NewManager(DefaultConfig(), c, clock)
				value, err := benchCookie(c, benchSession(size), now)
				if err != nil {
					b.Fatal(err)
				}
				r, _ := http.NewRequest(http.MethodGet, "/", nil)
				r.Header.Set("Cookie", "theme=dark; session="+value)
				var patch Mutation
				if err := patch.AddUpdate([]byte(`{"cart":[1,2,3]}`)); err != nil {
					b.Fatal(err)
				}
				name := fmt.Sprintf("%s/%dB/fallbacks=%d", codec.name, size, fallbacks)
				b.Run(name+"/open", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if s, o := manager.Open(r); o != OutcomeValid || s.IsNew() {
							b.Fatal(o)
						}
					}
				})
				b.Run(name+"/open+refresh", func(b *testing.B) {
					b.ReportAllocs()
					h := http.Header{}
					for b.Loop() {
						s, _ := manager.Open(r)
						clear(h)
						if action, err := manager.Save(context.Background(), s, h); err != nil || action != CookieSet {
							b.Fatal(action, err)
						}
					}
				})
				b.Run(name+"/open, remembered", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if s, o := remembering.Open(r); o != OutcomeValid || s.IsNew() {
							b.Fatal(o)
						}
					}
				})
				b.Run(name+"/open+refresh, remembered", func(b *testing.B) {
					b.ReportAllocs()
					h := http.Header{}
					for b.Loop() {
						s, _ := remembering.Open(r)
						clear(h)
						if action, err := remembering.Save(context.Background(), s, h); err != nil || action != CookieSet {
							b.Fatal(action, err)
						}
					}
				})
				b.Run(name+"/open+mutate+save", func(b *testing.B) {
					b.ReportAllocs()
					h := http.Header{}
					for b.Loop() {
						s, _ := manager.Open(r)
						if err := s.Apply(&patch); err != nil {
							b.Fatal(err)
						}
						clear(h)
						if _, err := manager.Save(context.Background(), s, h); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
