package integration_tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The upstream of these tests stores ?user= as the session's user, and
// answers with the X-Remote-User it received.
func identityRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/login": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Session-Update", r.URL.Query().Get("user"))
		},
		"/who": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%q", r.Header.Values("X-Remote-User"))
		},
	}
}

// An identity header carries a value only when the upstream reads exactly
// what the session matcher saw.
func TestIdentityHeadersMeanWhatTheMatcherMatched(t *testing.T) {
	up := startUpstream(t, identityRoutes())
	gw := startGateway(t, up.Addr(), `
	session {
		secret {env.IT_SESSION_SECRET}
		forward user X-Remote-User
	}
	@admin session user admin
	handle /who {
		header @admin X-Matched admin
		reverse_proxy {upstream}
	}
	reverse_proxy {upstream}
`)
	tests := []struct {
		name, user string // user as JSON
		want       string // what the upstream received
	}{
		{"plain", `"admin"`, `["admin"]`},
		{"blanks around", `" admin\t"`, `[]`},
		{"C1 control", `"x\u0085y"`, `[]`},
		{"bidi override", `"\u00e4dmin \u202e"`, `[]`},
		{"non-ASCII", `"J\u00fcrgen"`, `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := get(t, gw.URL+"/login?user="+url.QueryEscape(`{"user":`+tt.user+`}`), "")
			cookie := sessionCookie(t, resp).Value
			resp, body := get(t, gw.URL+"/who", cookie, "X-Remote-User", "admin")
			if body != tt.want {
				t.Errorf("the upstream received X-Remote-User %s, want %s", body, tt.want)
			}
			if matched := resp.Header.Get("X-Matched") == "admin"; matched != (tt.want == `["admin"]`) {
				t.Errorf("the matcher matched %v, but the upstream received %s", matched, body)
			}
		})
	}
	if !gw.WaitForLog(`"reason":"bidi"`) {
		t.Error("no log line gives the reason a value was withheld")
	}
	if strings.Contains(gw.Log(), "J\u00fcrgen") || strings.Contains(gw.Log(), `J\u00fcrgen`) {
		t.Error("a withheld value was logged")
	}
}

// rawGet sends a GET over a plain connection and returns the response's
// header bytes as they came off the wire.
func rawGet(t *testing.T, rawURL, cookie string) []byte {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nCookie: session=%s\r\nConnection: close\r\n\r\n", u.RequestURI(), u.Host, cookie)
	head, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ = bytes.Cut(head, []byte("\r\n\r\n"))
	return head
}

// A placeholder never writes a control byte into a response header.
func TestPlaceholdersWriteNoControlBytes(t *testing.T) {
	up := startUpstream(t, identityRoutes())
	gw := startGateway(t, up.Addr(), `
	header >X-User {http.session.user}
	session {
		secret {env.IT_SESSION_SECRET}
	}
	reverse_proxy {upstream}
`)
	resp, _ := get(t, gw.URL+"/login?user="+url.QueryEscape(`{"user":"a\u0000b\u0001c"}`), "")
	cookie := sessionCookie(t, resp).Value
	head := rawGet(t, gw.URL+"/who", cookie)
	for _, b := range head {
		if b < 0x20 && b != '\r' && b != '\n' || b == 0x7f {
			t.Fatalf("a control byte 0x%02x in the response header:\n%q", b, head)
		}
	}
	if !bytes.Contains(head, []byte("X-User: a b c")) {
		t.Errorf("X-User is not the value with spaces for controls:\n%q", head)
	}
}
