package integration_tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSpoofedHeadersNeverReachUpstream(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), sessionSite)
	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp).Value

	spellings := []string{"X-Session", "x-session", "X-SESSION", "X_Session", "x_session", "X-Session-Update",
		"x_session_replace", "X-SESSION-USER", "X-Session-Status", "X_sEsSiOn-_id"}
	for _, cookie := range []string{"", login} {
		req, _ := http.NewRequest(http.MethodGet, gw.URL+"/me", nil)
		if cookie != "" {
			req.Header.Set("Cookie", "session="+cookie)
		}
		for _, name := range spellings {
			req.Header[name] = []string{`{"user":"admin","role":"admin"}`}
		}
		req.Header.Add("X-Session", `{"second":"copy"}`)
		_, body := do(t, req)

		want := "{}"
		if cookie != "" {
			want = `{"user":"alice"}`
		}
		received := up.Last(t)
		if got := received.Values("X-Session"); len(got) != 1 || got[0] != want || body != want {
			t.Errorf("cookie=%t: upstream X-Session %q, want exactly %s", cookie != "", got, want)
		}
		delete(received, "X-Session")
		noProtocolHeaders(t, "upstream request", received)
	}
}

// TestSpoofedHeadersOnTheWire sends header names Go's client would not
// write itself, over a raw connection.
func TestSpoofedHeadersOnTheWire(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), sessionSite)
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /me HTTP/1.1\r\nHost: 127.0.0.1\r\n"+
		"x_SESSION: {\"user\":\"admin\"}\r\n"+
		"X-Session : {\"user\":\"admin\"}\r\n"+ // invalid; must be refused, not passed on
		"Connection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		received := up.Last(t)
		if received.Get("X-Session") != "{}" {
			t.Errorf("upstream X-Session %q", received.Get("X-Session"))
		}
		delete(received, "X-Session")
		noProtocolHeaders(t, "upstream request", received)
	} else if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d", resp.StatusCode)
	}

	// The same with only the underscore spelling, which Go accepts.
	conn2, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	fmt.Fprint(conn2, "GET /me HTTP/1.1\r\nHost: 127.0.0.1\r\nx_SESSION: {\"user\":\"admin\"}\r\nx-session_UPDATE: 1\r\nConnection: close\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(conn2), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	received := up.Last(t)
	if received.Get("X-Session") != "{}" {
		t.Errorf("upstream X-Session %q", received.Get("X-Session"))
	}
	delete(received, "X-Session")
	noProtocolHeaders(t, "upstream request", received)
}

func TestProtocolHeadersNeverReachClient(t *testing.T) {
	up := startUpstream(t, map[string]http.HandlerFunc{
		"/noisy": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.Header().Set("X-Session-Update", `{"early":true}`)
			w.Header().Set("X_Session_Hint", "leak")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("X_Session_Hint")
			w.Header().Set("X-Session-Update", `{"user":"alice"}`)
			w.Header().Set("X-Session", `{"echo":1}`)
			w.Header().Set("x-session-debug", "leak")
			w.Header().Set("Trailer", "X-Checksum, X-Session-Replace")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("body"))
			w.Header().Set("X-Checksum", "abc")
			w.Header().Set("X-Session-Replace", `{"late":true}`)
		},
		"/me": echoSession,
	})
	gw := startGateway(t, up.Addr(), sessionSite)

	var informational []textproto.MIMEHeader
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		informational = append(informational, h)
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/noisy", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, body := do(t, req)
	if resp.StatusCode != 200 || body != "body" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if len(informational) != 1 || informational[0].Get("Link") == "" {
		t.Fatalf("103 Early Hints did not pass through: %v", informational)
	}
	noProtocolHeaders(t, "103 response", http.Header(informational[0]))
	noProtocolHeaders(t, "final response", resp.Header)
	noProtocolHeaders(t, "trailers", resp.Trailer)
	if resp.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("legitimate trailer lost: %v", resp.Trailer)
	}
	// The final response's mutation was applied; the 1xx one and the
	// trailer were not.
	cookie := sessionCookie(t, resp)
	if _, seen := get(t, gw.URL+"/me", cookie.Value); seen != `{"user":"alice"}` {
		t.Errorf("session after the response: %s", seen)
	}
}

func TestMalformedMutationGives502AndKeepsOldCookie(t *testing.T) {
	deep := `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`
	up := startUpstream(t, map[string]http.HandlerFunc{
		"/login":     setsSession("X-Session-Update", `{"user":"alice"}`),
		"/me":        echoSession,
		"/not-json":  setsSession("X-Session-Update", `{"user":`, "Content-Type", "text/plain"),
		"/array":     setsSession("X-Session-Replace", `["user"]`),
		"/deep":      setsSession("X-Session-Update", deep),
		"/huge":      setsSession("X-Session-Update", `{"blob":"`+strings.Repeat("x", 70<<10)+`"}`),
		"/too-large": setsSession("X-Session-Update", `{"blob":"`+strings.Repeat("x", 20000)+`"}`),
		"/partial":   setsSession("X-Session-Update", `{"user":"mallory"}`, "X-Session-Update", `nope`),
	})
	gw := startGateway(t, up.Addr(), sessionSite)
	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp).Value

	for _, path := range []string{"/not-json", "/array", "/deep", "/huge", "/too-large", "/partial"} {
		t.Run(path, func(t *testing.T) {
			resp, body := get(t, gw.URL+path, login)
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d, want 502", resp.StatusCode)
			}
			if strings.Contains(body, "changed") {
				t.Errorf("the upstream's body reached the client: %q", body)
			}
			noSessionCookie(t, resp)
			noProtocolHeaders(t, "502 response", resp.Header)
			if _, seen := get(t, gw.URL+"/me", login); seen != `{"user":"alice"}` {
				t.Errorf("the old cookie must still hold the old session, got %s", seen)
			}
		})
	}
	for _, want := range []string{"malformed session mutation from upstream", "header X-Session-Update: not valid JSON", "session cookie too large"} {
		if !gw.WaitForLog(want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestLogsHoldNoSecretsOrCookieValues(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), sessionSite+"\n\tlog\n")
	var values []string
	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp).Value
	values = append(values, login)
	resp, _ = get(t, gw.URL+"/cart", login)
	values = append(values, sessionCookie(t, resp).Value)
	get(t, gw.URL+"/me", "tampered"+login)
	get(t, gw.URL+"/me", seal(t, fallbackSecret, `{"user":"bob"}`, timeNow()))

	if !gw.WaitForLog(`"msg":"handled request"`) {
		t.Fatal("the access log was not written; the test checks nothing")
	}
	time.Sleep(200 * time.Millisecond) // the last requests' lines
	log := gw.Log()
	for _, secret := range []string{currentSecret, fallbackSecret} {
		if strings.Contains(log, secret) {
			t.Error("a secret appears in the log")
		}
	}
	for _, v := range values {
		if strings.Contains(log, v) || strings.Contains(log, v[:40]) {
			t.Error("a cookie value appears in the log")
		}
	}
}

// rawRequest sends text over a new connection and returns the response.
func rawRequest(t *testing.T, gw *gateway, text string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, text)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestSpoofedRequestTrailersNeverReachUpstream(t *testing.T) {
	var mu sync.Mutex
	var trailers http.Header
	up := startUpstream(t, map[string]http.HandlerFunc{
		"/upload": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			mu.Lock()
			trailers = r.Trailer.Clone()
			mu.Unlock()
			_, _ = w.Write([]byte(r.Header.Get("X-Session")))
		},
	})
	gw := startGateway(t, up.Addr(), sessionSite)
	resp, body := rawRequest(t, gw, "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"+
		"Trailer: X-Session, X-Checksum\r\nConnection: close\r\n\r\n"+
		"4\r\nbody\r\n0\r\nX-Session: {\"user\":\"admin\"}\r\nX_Session_Role: admin\r\nX-Checksum: 1\r\n\r\n")
	if resp.StatusCode != 200 || body != "{}" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	noProtocolHeaders(t, "upstream trailers", trailers)
	if trailers.Get("X-Checksum") != "1" {
		t.Errorf("legitimate trailer lost: %v", trailers)
	}
	received := up.Last(t).Clone()
	delete(received, "X-Session")
	noProtocolHeaders(t, "upstream request", received)
}

func TestConnectionHeaderCannotRemoveTheSession(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), sessionSite)
	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp).Value
	for _, token := range []string{"X-Session", "x_session", "keep-alive, X-Session"} {
		if _, body := get(t, gw.URL+"/me", login, "Connection", token); body != `{"user":"alice"}` {
			t.Errorf("Connection: %s: the upstream saw %q", token, body)
		}
	}
}

func TestRejectedUpgradeNeverOpensTheTunnel(t *testing.T) {
	up := startUpstream(t, map[string]http.HandlerFunc{
		"/ws": func(w http.ResponseWriter, r *http.Request) {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"X-Session-Update: not-json\r\n\r\nBACKEND-BYTES\n")
			brw.Flush()
		},
	})
	gw := startGateway(t, up.Addr(), sessionSite)
	resp, body := rawRequest(t, gw, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(body, "BACKEND") {
		t.Errorf("status %d body %q", resp.StatusCode, body)
	}
}

func TestRejectedResponseCarriesNoUpstreamTrailers(t *testing.T) {
	up := startUpstream(t, map[string]http.HandlerFunc{
		"/bad": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "Grpc-Status")
			w.Header().Set("X-Session-Update", "not json")
			w.WriteHeader(200)
			_, _ = w.Write([]byte("secret body"))
			w.Header().Set("Grpc-Status", "0")
		},
	})
	gw := startGateway(t, up.Addr(), sessionSite)
	resp, body := get(t, gw.URL+"/bad", "")
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(body, "secret") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Grpc-Status") != "" || resp.Trailer.Get("Grpc-Status") != "" {
		t.Errorf("upstream trailer leaked: %v %v", resp.Header, resp.Trailer)
	}
}
