package integration_tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/internal/redistest"
)

// counterRoutes is an app whose /inc adds one to the session's counter
// and answers with the new value: an acknowledged write the next request
// must see.
func counterRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/inc": func(w http.ResponseWriter, r *http.Request) {
			var s struct{ N int }
			_ = json.Unmarshal([]byte(r.Header.Get("X-Session")), &s)
			w.Header().Set("X-Session-Update", fmt.Sprintf(`{"n":%d}`, s.N+1))
			fmt.Fprint(w, s.N+1)
		},
	}
}

// loadResult counts what a bounded load saw.
type loadResult struct {
	requests, errors, lost, reloads atomic.Int64
	// resets are requests that got no response: the connection was reset
	// as Caddy closed the old server's idle keep-alive connections, a race
	// of HTTP keep-alive itself that happens before the request reaches
	// any handler. They are reported, and such a write may or may not have
	// been applied, as after any lost response.
	resets       atomic.Int64
	firstProblem atomic.Value // string
}

func (r *loadResult) problem(format string, args ...any) {
	r.firstProblem.CompareAndSwap(nil, fmt.Sprintf(format, args...))
}

// reloadUnderLoad runs workers, each counting up in a session of its own,
// while the gateway's config is reloaded again and again, alternating
// between the variants of its Caddyfile (each made by replacing old with
// new in it). Every 200 is an acknowledged write; a later answer that does
// not count on from it is a lost write.
func reloadUnderLoad(t *testing.T, gw *gateway, variants [][2]string) *loadResult {
	t.Helper()
	original, err := os.ReadFile(gw.caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	const workers, maxPerWorker, reloads = 8, 3000, 8
	res := &loadResult{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// failed counts the answers since the last 200 that were not
			// a 200: a store may have applied such a write all the same.
			cookie, acked, failed := "", 0, 0
			for range maxPerWorker {
				select {
				case <-stop:
					return
				default:
				}
				resp, body := tryGet(gw.URL+"/inc", cookie)
				res.requests.Add(1)
				if resp == nil {
					res.resets.Add(1)
					failed++
					continue
				}
				if resp.StatusCode != http.StatusOK {
					res.errors.Add(1)
					res.problem("worker %d: %v %q", w, statusOf(resp), body)
					failed++
					continue
				}
				n, _ := strconv.Atoi(body)
				if n <= acked || n > acked+1+failed {
					res.lost.Add(1)
					res.problem("worker %d: counted %d after an acknowledged %d", w, n, acked)
				}
				acked, failed = n, 0
				for _, c := range resp.Cookies() {
					if c.Name == "session" {
						cookie = c.Value
					}
				}
			}
		}()
	}
	// The load runs from before the first reload until after the last.
	for i := range reloads {
		time.Sleep(120 * time.Millisecond)
		v := variants[i%len(variants)]
		config := strings.Replace(string(original), v[0], v[1], 1)
		req, _ := http.NewRequest(http.MethodPost, gw.Admin+"/load", strings.NewReader(config))
		req.Header.Set("Content-Type", "text/caddyfile")
		req.Header.Set("Cache-Control", "must-revalidate")
		if resp, body := tryDo(req); resp == nil || resp.StatusCode != http.StatusOK {
			t.Errorf("reload %d: %v %s", i, statusOf(resp), body)
		}
		res.reloads.Add(1)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	return res
}

// tryGet is get without failing the test from a worker goroutine.
func tryGet(url, cookie string) (*http.Response, string) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err.Error()
	}
	if cookie != "" {
		req.Header.Set("Cookie", "session="+cookie)
	}
	return tryDo(req)
}

func tryDo(req *http.Request) (*http.Response, string) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String()
}

func statusOf(resp *http.Response) any {
	if resp == nil {
		return "no response"
	}
	return resp.StatusCode
}

func checkNoLoss(t *testing.T, res *loadResult) {
	t.Helper()
	t.Logf("%d requests, %d reloads: %d errors, %d lost writes, %d connections reset", res.requests.Load(), res.reloads.Load(), res.errors.Load(), res.lost.Load(), res.resets.Load())
	if res.reloads.Load() < 3 {
		t.Errorf("only %d reloads happened under load", res.reloads.Load())
	}
	if res.errors.Load() != 0 || res.lost.Load() != 0 {
		t.Errorf("%d errors and %d lost writes; the first: %v", res.errors.Load(), res.lost.Load(), res.firstProblem.Load())
	}
}

// A reload that changes the memory store's bounds resizes it in place:
// nobody is logged out, no acknowledged write is lost.
func TestMemoryStoreSurvivesReloadsUnderLoad(t *testing.T) {
	up := startUpstream(t, counterRoutes())
	gw := startGateway(t, up.Addr(), `
	session {
		secret {env.IT_SESSION_SECRET}
		store memory {
			max_sessions 100
		}
	}
	reverse_proxy {upstream}
`)
	checkNoLoss(t, reloadUnderLoad(t, gw, [][2]string{{"max_sessions 100", "max_sessions 200"}, {"max_sessions 100", "max_sessions 100"}}))
}

// A reload that changes how the Redis store is configured keeps the old
// client open until the last request that uses it has finished.
func TestRedisStoreSurvivesReloadsUnderLoad(t *testing.T) {
	server := redistest.Start(t)
	up := startUpstream(t, counterRoutes())
	gw := startGateway(t, up.Addr(), `
	session {
		secret {env.IT_SESSION_SECRET}
		store redis {
			address redis://`+server.Addr+`/0
		}
	}
	reverse_proxy {upstream}
`)
	spelling := "redis://" + server.Addr + "/0"
	checkNoLoss(t, reloadUnderLoad(t, gw, [][2]string{{spelling, server.Addr}, {spelling, spelling}}))
}
