package integration_tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/caddy-session/internal/redistest"
)

// storeRoutes is a legacy app for the server-side stores.
func storeRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/me": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"session":%s,"id":%q,"status":%q}`, r.Header.Get("X-Session"), r.Header.Get("X-Session-Id"), r.Header.Get("X-Session-Status"))
		},
		"/login":  setsSession("X-Session-Update", `{"user":"alice"}`, "X-Session-Renew", "true"),
		"/cart":   setsSession("X-Session-Update", `{"cart":[1,2]}`),
		"/renew":  setsSession("X-Session-Renew", "true"),
		"/logout": setsSession("X-Session-Replace", `{}`),
		"/set": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Session-Update", fmt.Sprintf(`{%q:true}`, r.URL.Query().Get("k")))
			_, _ = w.Write([]byte("set"))
		},
	}
}

func redisSite(server *redistest.Server, extra string) string {
	return `
	session {
		secret {env.IT_SESSION_SECRET}
		lifetime 2h
		store redis {
			address redis://` + server.Addr + `/0
			key_prefix it:session:
		}
		` + extra + `
	}
	reverse_proxy {upstream}
`
}

// me is what /me answers.
type me struct {
	Session map[string]any `json:"session"`
	ID      string         `json:"id"`
	Status  string         `json:"status"`
}

func askMe(t *testing.T, gw *gateway, cookie string) (me, *http.Response) {
	t.Helper()
	resp, body := get(t, gw.URL+"/me", cookie)
	var m me
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("/me %q: %v", body, err)
		}
	}
	return m, resp
}

func redisClient(t *testing.T, server *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: server.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedisStoreFlow(t *testing.T) {
	server := redistest.Start(t)
	rc := redisClient(t, server)
	up := startUpstream(t, storeRoutes())
	gw := startGateway(t, up.Addr(), redisSite(server, ""))
	ctx := context.Background()

	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp).Value
	m, _ := askMe(t, gw, login)
	if m.Session["user"] != "alice" || len(m.ID) < 22 {
		t.Fatalf("after login: %+v", m)
	}
	key := "it:session:" + m.ID
	if fields, _ := rc.HGetAll(ctx, key).Result(); fields["user"] != `"alice"` {
		t.Errorf("redis holds %v", fields)
	}
	if ttl, _ := rc.PTTL(ctx, key).Result(); ttl <= 119*time.Minute || ttl > 2*time.Hour {
		t.Errorf("TTL %s, want the lifetime (2h)", ttl)
	}
	if strings.Contains(login, "alice") || len(login) > 300 {
		t.Errorf("the cookie should carry only a sealed ID (%d bytes)", len(login))
	}

	resp, _ = get(t, gw.URL+"/cart", login)
	if m2, _ := askMe(t, gw, login); fmt.Sprint(m2.Session["cart"]) != "[1 2]" || m2.ID != m.ID {
		t.Errorf("after update: %+v", m2)
	}

	resp, _ = get(t, gw.URL+"/logout", login)
	if c := sessionCookie(t, resp); c.MaxAge != -1 {
		t.Errorf("logout: %q", resp.Header.Values("Set-Cookie"))
	}
	if n, _ := rc.Exists(ctx, key).Result(); n != 0 {
		t.Error("the emptied session is still in redis")
	}
	if m3, _ := askMe(t, gw, login); len(m3.Session) != 0 || m3.ID != "" {
		t.Errorf("after logout the old cookie opened %+v", m3)
	}
}

func TestRedisRenewalInvalidatesTheOldID(t *testing.T) {
	server := redistest.Start(t)
	up := startUpstream(t, storeRoutes())
	gw := startGateway(t, up.Addr(), redisSite(server, ""))

	resp, _ := get(t, gw.URL+"/cart", "")
	before := sessionCookie(t, resp).Value
	first, _ := askMe(t, gw, before)

	// Logging in renews the ID (X-Session-Renew: true) and keeps the data.
	resp, _ = get(t, gw.URL+"/login", before)
	after := sessionCookie(t, resp).Value
	second, _ := askMe(t, gw, after)
	if second.ID == first.ID || second.Session["user"] != "alice" || fmt.Sprint(second.Session["cart"]) != "[1 2]" {
		t.Errorf("renewed: %+v (was %+v)", second, first)
	}
	if stale, _ := askMe(t, gw, before); len(stale.Session) != 0 {
		t.Errorf("the pre-login ID still opens: %+v", stale)
	}
}

func TestRedisRevocationThroughTheAdminAPI(t *testing.T) {
	server := redistest.Start(t)
	up := startUpstream(t, storeRoutes())
	gw := startGateway(t, up.Addr(), redisSite(server, ""))
	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp).Value
	m, _ := askMe(t, gw, login)

	req, _ := http.NewRequest(http.MethodPost, gw.Admin+"/session/revoke", strings.NewReader(`{"id":"`+m.ID+`"}`))
	resp, body := do(t, req)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, `{"revoked":1,"stores":[{"store":"redis redis://`+server.Addr+`/0 prefix it:session:","revoked":true}]}`) {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if after, _ := askMe(t, gw, login); len(after.Session) != 0 {
		t.Errorf("the revoked session still opens: %+v", after)
	}
	req, _ = http.NewRequest(http.MethodGet, gw.Admin+"/session/revoke", nil)
	if resp, _ := do(t, req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET revoke: %d", resp.StatusCode)
	}
}

func TestRedisConcurrentRequestsChangingDistinctKeysAllPersist(t *testing.T) {
	server := redistest.Start(t)
	up := startUpstream(t, storeRoutes())
	gw := startGateway(t, up.Addr(), redisSite(server, ""))
	concurrentDistinctKeys(t, gw)
}

func TestMemoryStoreConcurrentRequestsChangingDistinctKeysAllPersist(t *testing.T) {
	up := startUpstream(t, storeRoutes())
	gw := startGateway(t, up.Addr(), `
	session {
		secret {env.IT_SESSION_SECRET}
		store memory {
			max_sessions 1000
		}
	}
	reverse_proxy {upstream}
`)
	concurrentDistinctKeys(t, gw)
}

// TestCookieStoreLosesConcurrentChanges measures what the server-side
// stores fix: with the session in the cookie, each of 100 concurrent
// responses carries the whole session as that request saw it, so whichever
// Set-Cookie the browser keeps last, 99 of the 100 changes are gone.
func TestCookieStoreLosesConcurrentChanges(t *testing.T) {
	up := startUpstream(t, storeRoutes())
	gw := startGateway(t, up.Addr(), sessionSite)
	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp).Value
	var mu sync.Mutex
	var cookies []string
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			resp, _ := get(t, fmt.Sprintf("%s/set?k=k%03d", gw.URL, i), login)
			mu.Lock()
			cookies = append(cookies, sessionCookie(t, resp).Value)
			mu.Unlock()
		})
	}
	wg.Wait()
	best := 0
	for _, c := range cookies {
		m, _ := askMe(t, gw, c)
		best = max(best, len(m.Session)-1) // minus "user"
	}
	t.Logf("cookie store: the best of the 100 returned cookies holds %d of the 100 changes", best)
	if best != 1 {
		t.Errorf("a cookie holds %d changes; each response should carry only its own", best)
	}
}

// concurrentDistinctKeys sends 100 concurrent requests with one session,
// each setting its own key, and checks that all 100 changes persist.
func concurrentDistinctKeys(t *testing.T, gw *gateway) {
	t.Helper()
	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp).Value

	var wg sync.WaitGroup
	failures := make(chan string, 100)
	for i := range 100 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/set?k=k%03d", gw.URL, i), nil)
			req.Header.Set("Cookie", "session="+login)
			resp, err := client.Do(req)
			if err != nil {
				failures <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failures <- resp.Status
			}
		})
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	m, _ := askMe(t, gw, login)
	missing := 0
	for i := range 100 {
		if m.Session[fmt.Sprintf("k%03d", i)] != true {
			missing++
		}
	}
	if missing != 0 || m.Session["user"] != "alice" {
		t.Errorf("%d of 100 concurrent changes were lost (user %v)", missing, m.Session["user"])
	}
}

func TestRedisOutageAndRecovery(t *testing.T) {
	server := redistest.Start(t)
	up := startUpstream(t, storeRoutes())
	closed := startGateway(t, up.Addr(), redisSite(server, ""))
	open := startGateway(t, up.Addr(), redisSite(server, "on_store_error fail_open"))

	resp, _ := get(t, closed.URL+"/login", "")
	closedLogin := sessionCookie(t, resp).Value
	resp, _ = get(t, open.URL+"/login", "")
	openLogin := sessionCookie(t, resp).Value

	server.Stop()

	// fail_closed: a session that cannot be opened is a 503.
	if _, resp := askMe(t, closed, closedLogin); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("fail_closed read: %d", resp.StatusCode)
	}
	// fail_open: the upstream gets an empty session, marked unavailable...
	m, resp := askMe(t, open, openLogin)
	if resp.StatusCode != 200 || len(m.Session) != 0 || m.Status != "unavailable" {
		t.Errorf("fail_open read: %d %+v", resp.StatusCode, m)
	}
	// ...and a change it makes is refused, never dropped silently.
	if resp, _ := get(t, open.URL+"/cart", openLogin); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("fail_open write: %d", resp.StatusCode)
	}
	// A request without a cookie needs no store to be read, but its change
	// cannot be saved.
	resp, _ = get(t, closed.URL+"/cart", "")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("write without a cookie: %d", resp.StatusCode)
	}
	noSessionCookie(t, resp)
	if !closed.WaitForLog("session cannot be saved") {
		t.Error("the refused save is not logged")
	}

	// Redis comes back (empty: it kept nothing); the gateways recover
	// without a restart. The old IDs are unknown and never adopted.
	server.Restart()
	var m2 me
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if m2, resp = askMe(t, closed, closedLogin); resp.StatusCode == http.StatusOK {
			break
		}
	}
	if resp.StatusCode != http.StatusOK || len(m2.Session) != 0 {
		t.Fatalf("after recovery: %d %+v", resp.StatusCode, m2)
	}
	resp, _ = get(t, closed.URL+"/login", closedLogin)
	again := sessionCookie(t, resp).Value
	if m3, _ := askMe(t, closed, again); m3.Session["user"] != "alice" {
		t.Errorf("after recovery, login: %+v", m3)
	}
}

func TestTwoGatewaysShareOneRedis(t *testing.T) {
	server := redistest.Start(t)
	up := startUpstream(t, storeRoutes())
	a := startGateway(t, up.Addr(), redisSite(server, ""))
	b := startGateway(t, up.Addr(), redisSite(server, ""))

	resp, _ := get(t, a.URL+"/login", "")
	login := sessionCookie(t, resp).Value
	if m, _ := askMe(t, b, login); m.Session["user"] != "alice" {
		t.Errorf("gateway B sees %+v", m)
	}
	get(t, b.URL+"/cart", login)
	if m, _ := askMe(t, a, login); fmt.Sprint(m.Session["cart"]) != "[1 2]" {
		t.Errorf("gateway A sees %+v after B's change", m)
	}
}

// With client_cache, each gateway answers a session read again from its
// memory; a change it makes itself is read back at once, and one made by
// the other gateway (an update, a logout, an admin revocation) reaches it
// through Redis's invalidation, well before the one second after which it
// would ask Redis anyway.
func TestTwoGatewaysWithClientCache(t *testing.T) {
	server := redistest.Start(t)
	rc := redisClient(t, server)
	up := startUpstream(t, storeRoutes())
	site := strings.Replace(redisSite(server, ""), "key_prefix it:session:", "key_prefix it:session:\n\t\t\tclient_cache 1000", 1)
	a := startGateway(t, up.Addr(), site)
	b := startGateway(t, up.Addr(), site)
	ctx := context.Background()
	hgetalls := func() int {
		t.Helper()
		info, err := rc.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_hgetall:calls="); ok {
				var n int
				fmt.Sscan(strings.SplitN(rest, ",", 2)[0], &n)
				return n
			}
		}
		return 0
	}

	// A login, then at once the page it redirects to, on the same gateway.
	resp, _ := get(t, a.URL+"/login", "")
	login := sessionCookie(t, resp).Value
	if m, _ := askMe(t, a, login); m.Session["user"] != "alice" {
		t.Fatalf("right after login, gateway A reads %+v", m)
	}
	before := hgetalls()
	for range 20 {
		if m, _ := askMe(t, b, login); m.Session["user"] != "alice" {
			t.Fatalf("gateway B reads %+v", m)
		}
	}
	if n := hgetalls() - before; n > 3 {
		t.Errorf("20 reads on gateway B asked Redis %d times: the cache is not used", n)
	}
	_, metrics := get(t, b.Admin+"/metrics", "")
	var hits, misses float64
	for line := range strings.SplitSeq(metrics, "\n") {
		fmt.Sscanf(line, "caddy_session_client_cache_hits_total %g", &hits)
		fmt.Sscanf(line, "caddy_session_client_cache_misses_total %g", &misses)
	}
	if hits < 17 || misses < 1 {
		t.Errorf("gateway B's metrics count %g hits and %g misses of 20 reads", hits, misses)
	}

	// seenOnB waits for gateway B to read what ok accepts, B having just
	// read the session (so that only an invalidation, not the cache's one
	// second, can bring the change within the 300 ms allowed).
	seenOnB := func(what string, change func(), ok func(me) bool) {
		t.Helper()
		askMe(t, b, login)
		change()
		start := time.Now()
		for {
			m, _ := askMe(t, b, login)
			if ok(m) {
				t.Logf("%s: seen on gateway B after %s", what, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > 300*time.Millisecond {
				t.Fatalf("%s: gateway B still reads %+v after %s", what, m, time.Since(start))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	seenOnB("an update on A", func() { get(t, a.URL+"/cart", login) },
		func(m me) bool { return fmt.Sprint(m.Session["cart"]) == "[1 2]" })
	m, _ := askMe(t, a, login)
	askMe(t, a, login) // cached on A too
	seenOnB("a revocation through A's admin API", func() {
		req, _ := http.NewRequest(http.MethodPost, a.Admin+"/session/revoke", strings.NewReader(`{"id":"`+m.ID+`"}`))
		if resp, body := do(t, req); resp.StatusCode != 200 || !strings.Contains(body, `"revoked":1`) {
			t.Fatalf("revoke: %d %s", resp.StatusCode, body)
		}
		// On A, at once: its own write evicted the session.
		if m, _ := askMe(t, a, login); len(m.Session) != 0 {
			t.Errorf("right after its revocation, the session still opens on gateway A: %+v", m)
		}
	}, func(m me) bool { return len(m.Session) == 0 })

	// A renewal on B, within B's window, of a session revoked through A
	// does not bring it back under a new ID: the renewal asks Redis.
	resp, _ = get(t, a.URL+"/login", "")
	second := sessionCookie(t, resp).Value
	m, _ = askMe(t, a, second)
	askMe(t, b, second)
	req, _ := http.NewRequest(http.MethodPost, a.Admin+"/session/revoke", strings.NewReader(`{"id":"`+m.ID+`"}`))
	do(t, req)
	resp, _ = get(t, b.URL+"/renew", second)
	for _, c := range resp.Cookies() {
		if c.Name == "session" && c.MaxAge >= 0 {
			if m, _ := askMe(t, a, c.Value); len(m.Session) != 0 {
				t.Errorf("a renewal on B brought the revoked session back: %+v", m)
			}
		}
	}
}
