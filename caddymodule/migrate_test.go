package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// Every shared format migrates to securecookie: a user logged in under the
// legacy app's cookie is handed upstream and gets the gateway's own cookie,
// and the legacy cookie (both cookies of a pair) is deleted.
func TestMigrationFromEveryFormat(t *testing.T) {
	const legacySecret = "the-legacy-apps-secret-0123456789abcdef"
	for _, tc := range []struct {
		codec, cookieName string
		options           map[string]string
		deleted           []string
	}{
		{"flask", "session", nil, []string{"session"}},
		{"django", "sessionid", nil, []string{"sessionid"}},
		{"rails", "_app_session", map[string]string{"key_digest": "sha256"}, []string{"_app_session"}},
		{"cookie-session", "session", nil, []string{"session", "session.sig"}},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			info, ok := sessioncore.LookupCodec(tc.codec)
			if !ok {
				t.Fatalf("codec %s is not registered", tc.codec)
			}
			codec, err := info.Make(tc.options, []byte(legacySecret))
			if err != nil {
				t.Fatal(err)
			}
			value, err := codec.Encode(tc.cookieName, sessioncore.Payload{
				JSON: []byte(`{"user":"alice"}`), Issued: time.Now(), Expires: time.Now().Add(time.Hour),
			})
			if err != nil {
				t.Fatal(err)
			}
			cookie := tc.cookieName + "=" + value
			if v, sig, pair := strings.Cut(value, sessioncore.PairSeparator); pair {
				cookie = tc.cookieName + "=" + v + "; " + tc.cookieName + ".sig=" + sig
			}

			h := newTestHandler(t, func(h *Handler) {
				h.CookieName = "sid"
				h.MigrateFrom = []MigrateFrom{{Codec: tc.codec, CookieName: tc.cookieName, Secret: legacySecret, CodecOptions: tc.options}}
			})
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Cookie", cookie)
			rec := newRecorder()
			var seen string
			if _, err := serve(h, rec, r, func(w http.ResponseWriter, r *http.Request) error {
				seen = r.Header.Get("X-Session")
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if seen != `{"user":"alice"}` {
				t.Errorf("the upstream got X-Session %s", seen)
			}
			_, header := rec.final(t)
			set, gone := false, map[string]bool{}
			for _, line := range header.Values("Set-Cookie") {
				c, err := http.ParseSetCookie(line)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case c.Name == "sid" && c.Value != "":
					set = true
				case c.MaxAge < 0:
					gone[c.Name] = true
				}
			}
			if !set {
				t.Errorf("no cookie of the gateway's own: %q", header.Values("Set-Cookie"))
			}
			for _, name := range tc.deleted {
				if !gone[name] {
					t.Errorf("%s is not deleted: %q", name, header.Values("Set-Cookie"))
				}
			}
		})
	}
}
