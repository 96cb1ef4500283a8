package integration_tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sessiongate/caddy-session/internal/redistest"
)

// A user's sessions, for each store: the app lists them with
// expose_sessions ("where am I logged in"), an operator lists them and
// revokes one through the admin API.
func TestUserSessionsAreListed(t *testing.T) {
	server := redistest.Start(t)
	for name, store := range map[string]string{
		"memory": "memory",
		"redis":  "redis {\n\t\t\taddress " + server.Addr + "\n\t\t}",
	} {
		t.Run(name, func(t *testing.T) {
			up := startUpstream(t, map[string]http.HandlerFunc{
				"/login": func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Session-Update", `{"user":"`+r.URL.Query().Get("user")+`"}`)
				},
				"/devices": func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(r.Header.Get("X-Session-List"))) },
			})
			gw := startGateway(t, up.Addr(), `
	session {
		secret {env.IT_SESSION_SECRET}
		user_key user
		expose_sessions
		store `+store+`
	}
	reverse_proxy {upstream}
`)
			login := func(userAgent string) string {
				resp, _ := get(t, gw.URL+"/login?user=alice", "", "User-Agent", userAgent)
				return sessionCookie(t, resp).Value
			}
			laptop := login("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")
			login("curl/8.5.0")

			_, body := get(t, gw.URL+"/devices", laptop, "User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")
			var devices []struct {
				Device  string `json:"device"`
				Current bool   `json:"current"`
			}
			if err := json.Unmarshal([]byte(body), &devices); err != nil || len(devices) != 2 {
				t.Fatalf("X-Session-List %q (%v)", body, err)
			}
			if devices[0].Device != "Firefox on Linux" || !devices[0].Current || devices[1].Device != "curl" || devices[1].Current {
				t.Errorf("X-Session-List %s", body)
			}

			_, body = get(t, gw.Admin+"/session/sessions?user=alice", "")
			var listed struct {
				Sessions []struct {
					ID     string `json:"id"`
					Device string `json:"device"`
				} `json:"sessions"`
			}
			if err := json.Unmarshal([]byte(body), &listed); err != nil || len(listed.Sessions) != 2 {
				t.Fatalf("admin list %s (%v)", body, err)
			}
			req, _ := http.NewRequest(http.MethodPost, gw.Admin+"/session/revoke", strings.NewReader(`{"id":"`+listed.Sessions[1].ID+`"}`))
			if resp, body := do(t, req); resp.StatusCode != 200 || !strings.Contains(body, `"revoked":1`) {
				t.Fatalf("revoke one: %d %s", resp.StatusCode, body)
			}
			if _, body := get(t, gw.Admin+"/session/sessions?user=alice", ""); strings.Count(body, `"id_hash"`) != 1 {
				t.Errorf("after revoking one: %s", body)
			}

			// All but the laptop, then all, then a user with none.
			login("curl/8.5.0")
			keep := listed.Sessions[0].ID // the laptop, the oldest
			for _, tc := range []struct{ body, want string }{
				{`{"user":"alice","except":"` + keep + `"}`, `"sessions_revoked":1`},
				{`{"user":"alice"}`, `"sessions_revoked":1`},
				{`{"user":"nobody"}`, `"sessions_revoked":0`},
			} {
				req, _ := http.NewRequest(http.MethodPost, gw.Admin+"/session/revoke", strings.NewReader(tc.body))
				if resp, body := do(t, req); resp.StatusCode != 200 || !strings.Contains(body, tc.want) {
					t.Errorf("revoke %s: %d %s", tc.body, resp.StatusCode, body)
				}
				if tc.body == `{"user":"alice","except":"`+keep+`"}` {
					if _, body := get(t, gw.URL+"/devices", laptop); !strings.Contains(body, `"current":true`) || strings.Count(body, "id_hash") != 1 {
						t.Errorf("the kept session after all but one: %s", body)
					}
				}
			}
			if _, body := get(t, gw.URL+"/devices", laptop); body != "" {
				t.Errorf("after revoking all, the laptop still lists %s", body)
			}
		})
	}
}
