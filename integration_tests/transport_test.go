package integration_tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func timeNow() time.Time { return time.Now() }

func TestStreamingResponsePassesThrough(t *testing.T) {
	release := make(chan struct{})
	up := startUpstream(t, map[string]http.HandlerFunc{
		"/stream": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("X-Session-Update", `{"streaming":true}`)
			_, _ = io.WriteString(w, "first\n")
			http.NewResponseController(w).Flush()
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			_, _ = io.WriteString(w, "second\n")
		},
	})
	gw := startGateway(t, up.Addr(), sessionSite)

	resp, err := client.Get(gw.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The header, with the new cookie, arrives before the upstream finishes.
	sessionCookie(t, resp)
	noProtocolHeaders(t, "streamed response", resp.Header)
	reader := bufio.NewReader(resp.Body)
	line, err := reader.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk %q, %v", line, err)
	}
	close(release) // only now may the upstream send the rest
	rest, err := io.ReadAll(reader)
	if err != nil || string(rest) != "second\n" {
		t.Errorf("rest %q, %v", rest, err)
	}
}

func TestWebsocketUpgradePassesThrough(t *testing.T) {
	up := startUpstream(t, map[string]http.HandlerFunc{
		"/ws": func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Session") != `{"user":"alice"}` {
				http.Error(w, "no session", http.StatusUnauthorized)
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Session-Update: {\"ws\":1}\r\n\r\n")
			brw.Flush()
			// Echo one line back.
			line, err := brw.ReadString('\n')
			if err == nil {
				fmt.Fprint(brw, "echo: "+line)
				brw.Flush()
			}
		},
		"/login": setsSession("X-Session-Update", `{"user":"alice"}`),
	})
	gw := startGateway(t, up.Addr(), sessionSite)
	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp).Value

	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: session=%s\r\n\r\n", login)
	reader := bufio.NewReader(conn)
	resp, err = http.ReadResponse(reader, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	noProtocolHeaders(t, "101 response", resp.Header)
	fmt.Fprint(conn, "hello\n")
	line, err := reader.ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Errorf("echo %q, %v", line, err)
	}
}
