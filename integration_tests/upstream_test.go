package integration_tests

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// upstream is a real HTTP server on loopback that records the headers of
// every request it receives and answers through per-path handlers, the way
// a legacy app behind the gateway would.
type upstream struct {
	server *httptest.Server

	mu       sync.Mutex
	received []http.Header
	routes   map[string]http.HandlerFunc
}

// startUpstream starts an upstream whose paths answer with routes; any
// other path answers 200 "ok". It stops when the test ends.
func startUpstream(t *testing.T, routes map[string]http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{routes: routes}
	u.server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.server.Close)
	return u
}

// Addr returns host:port for reverse_proxy.
func (u *upstream) Addr() string { return strings.TrimPrefix(u.server.URL, "http://") }

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.received = append(u.received, r.Header.Clone())
	handler := u.routes[r.URL.Path]
	u.mu.Unlock()
	if handler == nil {
		_, _ = w.Write([]byte("ok"))
		return
	}
	handler(w, r)
}

// Count returns how many requests the upstream has received.
func (u *upstream) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.received)
}

// Last returns the headers of the last request received.
func (u *upstream) Last(t *testing.T) http.Header {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.received) == 0 {
		t.Fatal("the upstream received no request")
	}
	return u.received[len(u.received)-1]
}

// setsSession answers with the given mutation headers (name, value pairs).
func setsSession(headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Add(headers[i], headers[i+1])
		}
		_, _ = w.Write([]byte("changed"))
	}
}

// echoSession answers with the X-Session header it received.
func echoSession(w http.ResponseWriter, r *http.Request) {
	_, _ = w.Write([]byte(r.Header.Get("X-Session")))
}
