// Package integration_tests runs the gateway as users run it: a real Caddy
// binary built from cmd/caddy, in front of real upstream servers, on
// loopback ports, driven over HTTP.
package integration_tests

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/internal/redistest"
)

// The secrets of the test configurations. The tests also seal cookies
// themselves with these, to craft expired and fallback-key cookies.
const (
	currentSecret  = "integration-current-secret-0123456789abcdef"
	fallbackSecret = "integration-previous-secret-0123456789abcdef"
	alienSecret    = "integration-unrelated-secret-0123456789abcdef"
)

// caddyBinary is the gateway binary built once by TestMain.
var caddyBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "session-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddyBinary = filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", caddyBinary, "./cmd/caddy")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the gateway:", err)
		os.Exit(1)
	}
	code := m.Run()
	closeBrowser()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int { return freePorts(t, 1)[0] }

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago, as redistest chooses its servers' ports.
func freePorts(t *testing.T, n int) []int { return redistest.FreePorts(t, n) }

// gateway is one running Caddy process.
type gateway struct {
	URL       string // http://127.0.0.1:<port> (or localhost), the site under test
	Admin     string // http://127.0.0.1:<port>, Caddy's admin endpoint
	caddyfile string // the file it runs on

	mu  sync.Mutex
	log bytes.Buffer
}

// WaitForLog waits up to five seconds for the log to contain want, and
// reports whether it did: the access log line of a request is written
// after its response has gone out.
func (g *gateway) WaitForLog(want string) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(g.Log(), want) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// Log returns everything the process wrote to stderr so far.
func (g *gateway) Log() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.log.String()
}

type lockedWriter struct{ g *gateway }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.g.mu.Lock()
	defer w.g.mu.Unlock()
	return w.g.log.Write(p)
}

// startGateway runs Caddy with one site on a free port. site is the body
// of the site block; {upstream} in it is replaced by upstream's address.
// The process logs at debug level and is stopped when the test ends.
func startGateway(t *testing.T, upstream string, site string) *gateway {
	t.Helper()
	return startGatewayAt(t, "127.0.0.1", upstream, site)
}

// startGatewayAt is startGateway with the site served under host, both in
// the site address and in the gateway's URL. The browser tests use
// localhost: Chromium counts http://localhost as a secure context.
func startGatewayAt(t *testing.T, host, upstream, site string) *gateway {
	t.Helper()
	ports := freePorts(t, 2)
	port, admin := ports[0], ports[1]
	caddyfile := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	debug
}

http://%s:%d {
%s
}
`, admin, host, port, strings.ReplaceAll(site, "{upstream}", upstream))
	g := runCaddy(t, caddyfile, fmt.Sprintf("http://%s:%d", host, port))
	g.Admin = fmt.Sprintf("http://127.0.0.1:%d", admin)
	return g
}

// runCaddy runs Caddy on a whole Caddyfile and waits until url answers.
func runCaddy(t *testing.T, caddyfile, url string) *gateway {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateway{URL: url, caddyfile: path}
	cmd := exec.Command(caddyBinary, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir, "HOME="+dir)
	cmd.Stdout, cmd.Stderr = lockedWriter{g}, lockedWriter{g}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed, not sent on, so that both the wait below and the
	// cleanup see the exit: a Caddy that refuses its config exits at once.
	var exitErr error
	exited := make(chan struct{})
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("caddy log:\n%s", g.Log())
		}
	})
	host := strings.TrimPrefix(url, "http://")
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("caddy exited: %v\n%s", exitErr, g.Log())
		default:
		}
		if c, err := net.DialTimeout("tcp", host, 200*time.Millisecond); err == nil {
			c.Close()
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not listen on %s\n%s", host, g.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client never follows redirects and keeps no cookies: tests say exactly
// which cookie each request carries.
var client = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp, body.String()
}

// get sends a GET to url with the given session cookie value ("" for none)
// and extra headers as name, value pairs.
func get(t *testing.T, url, cookie string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", "session="+cookie)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return do(t, req)
}

// sessionCookie returns the session cookie a response sets, failing the
// test unless there is exactly one.
func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	var found []*http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one session Set-Cookie, got %q", resp.Header.Values("Set-Cookie"))
	}
	return found[0]
}

// noSessionCookie fails the test when the response sets the session cookie.
func noSessionCookie(t *testing.T, resp *http.Response) {
	t.Helper()
	if lines := resp.Header.Values("Set-Cookie"); len(lines) != 0 {
		t.Errorf("want no Set-Cookie, got %q", lines)
	}
}

// noProtocolHeaders fails the test when any header of the protocol, in any
// spelling, is in h.
func noProtocolHeaders(t *testing.T, where string, h http.Header) {
	t.Helper()
	for name := range h {
		if strings.HasPrefix(strings.ReplaceAll(strings.ToLower(name), "_", "-"), "x-session") {
			t.Errorf("%s: protocol header %s = %q", where, name, h[name])
		}
	}
}

// startApp runs cmd, an app that listens on port, until the test ends, and
// waits up to timeout for the port to accept connections; it returns the
// app's host:port. The app's output is logged if the test fails.
func startApp(t *testing.T, name string, cmd *exec.Cmd, port int, timeout time.Duration) string {
	t.Helper()
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, log.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start", name)
		}
	}
}
