package integration_tests

import (
	"net/http"
	"strings"
	"testing"
)

// A Flask app rewritten behind the gateway: users logged in under Flask's
// cookie stay logged in. A real Flask login is carried over to the
// gateway's own format, and the Flask cookie goes; with keep_legacy, the
// Flask app still running keeps its cookie in step.
func TestMigrationFromFlaskKeepsUsersLoggedIn(t *testing.T) {
	flaskAddr := startFlask(t)
	t.Setenv("IT_FLASK_SECRET", flaskSecret)
	other := startUpstream(t, map[string]http.HandlerFunc{"/me": echoSession})

	// Logged in at the Flask app itself, before the gateway existed.
	resp, _ := get(t, "http://"+flaskAddr+"/flask/login?user=alice", "")
	flaskCookie := sessionCookie(t, resp).Value

	for _, keep := range []bool{false, true} {
		name := map[bool]string{false: "moved", true: "kept in step"}[keep]
		t.Run(name, func(t *testing.T) {
			keepLine := ""
			if keep {
				keepLine = "\n\t\t\tkeep_legacy"
			}
			gw := startGateway(t, other.Addr(), `
	session {
		secret {env.IT_SESSION_SECRET}
		cookie_name sid
		migrate_from flask {
			cookie_name session
			secret {env.IT_FLASK_SECRET}`+keepLine+`
		}
	}
	handle /flask/* {
		reverse_proxy `+flaskAddr+`
	}
	reverse_proxy {upstream}
`)
			resp, body := get(t, gw.URL+"/me", flaskCookie)
			if !strings.Contains(body, `"user":"alice"`) {
				t.Fatalf("the Flask login was not carried over: %s", body)
			}
			var sid, deleted string
			for _, c := range resp.Cookies() {
				switch {
				case c.Name == "sid":
					sid = c.Value
				case c.Name == "session" && c.MaxAge < 0:
					deleted = c.Name
				}
			}
			if sid == "" {
				t.Fatalf("no cookie of the gateway's own format: %q", resp.Header.Values("Set-Cookie"))
			}
			if keep == (deleted != "") {
				t.Errorf("keep_legacy %v: Set-Cookie %q", keep, resp.Header.Values("Set-Cookie"))
			}
			req, _ := http.NewRequest("GET", gw.URL+"/me", nil)
			req.Header.Set("Cookie", "sid="+sid)
			if _, body := do(t, req); !strings.Contains(body, `"user":"alice"`) {
				t.Errorf("with the new cookie alone: %s", body)
			}
			if keep {
				// The Flask app still runs, and still knows the user.
				req, _ := http.NewRequest("GET", gw.URL+"/flask/whoami", nil)
				req.Header.Set("Cookie", "sid="+sid+"; session="+flaskCookie)
				if _, body := do(t, req); !strings.Contains(body, `"user":"alice"`) {
					t.Errorf("the Flask app behind the gateway: %s", body)
				}
			}
			if !gw.WaitForLog(`"outcome":"migrated"`) {
				t.Error("the log does not say the session was migrated")
			}
		})
	}
}
