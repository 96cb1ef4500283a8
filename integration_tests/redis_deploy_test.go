package integration_tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/internal/redistest"
)

// Redis as it is deployed: a cluster behind one configuration endpoint,
// sentinels that fail over, TLS with a client certificate, credentials
// kept out of the config.

// storeSite is a site whose session store is the redis block store.
func storeSite(store, extra string) string {
	return `
	session {
		secret {env.IT_SESSION_SECRET}
		lifetime 2h
		store redis {
			` + store + `
			key_prefix it:session:
		}
		` + extra + `
	}
	reverse_proxy {upstream}
`
}

// revokeAnswer is what POST /session/revoke answers.
type revokeAnswer struct {
	Revoked int `json:"revoked"`
	Stores  []struct {
		Store   string `json:"store"`
		Revoked bool   `json:"revoked"`
		Error   string `json:"error"`
	} `json:"stores"`
	Error string `json:"error"`
}

func revokeSession(t *testing.T, gw *gateway, id string) (int, revokeAnswer, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, gw.Admin+"/session/revoke", strings.NewReader(`{"id":"`+id+`"}`))
	resp, body := do(t, req)
	var answer revokeAnswer
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Fatalf("revoke answered %d %q: %v", resp.StatusCode, body, err)
	}
	return resp.StatusCode, answer, body
}

// TestRedisClusterFromOneSeed: one seed address of a three-master cluster
// and cluster; sessions land on every master, and login, read, update and
// revocation work wherever they land. Without cluster, the sessions that
// do not live on the seed are 503s (MOVED).
func TestRedisClusterFromOneSeed(t *testing.T) {
	cluster := redistest.StartCluster(t)
	cc := cluster.Client(t)
	ctx := context.Background()
	up := startUpstream(t, storeRoutes())
	gw := startGateway(t, up.Addr(), storeSite("address redis://"+cluster.Seed()+"\n\t\t\tcluster", ""))
	plain := startGateway(t, up.Addr(), storeSite("address redis://"+cluster.Seed(), ""))

	// Log in until a session lands away from the seed (two in three do).
	var login string
	var m me
	for range 30 {
		resp, _ := get(t, gw.URL+"/login", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		login = sessionCookie(t, resp).Value
		if m, _ = askMe(t, gw, login); m.Session["user"] != "alice" {
			t.Fatalf("after login: %+v", m)
		}
		if cluster.Owner(t, "it:session:"+m.ID) != cluster.Nodes[0] {
			break
		}
	}
	key := "it:session:" + m.ID
	owner := cluster.Owner(t, key)
	if owner == cluster.Nodes[0] {
		t.Fatal("30 sessions, all on the seed")
	}
	if fields, err := cc.HGetAll(ctx, key).Result(); err != nil || fields["user"] != `"alice"` {
		t.Errorf("the cluster holds %v (%v)", fields, err)
	}

	if resp, _ := get(t, gw.URL+"/cart", login); resp.StatusCode != http.StatusOK {
		t.Fatalf("update: %d", resp.StatusCode)
	}
	if m2, _ := askMe(t, gw, login); fmt.Sprint(m2.Session["cart"]) != "[1 2]" || m2.ID != m.ID {
		t.Errorf("after update: %+v", m2)
	}
	// The same seed without cluster: a plain client, redirected away.
	if _, resp := askMe(t, plain, login); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("without cluster, a session on %s read through the seed: %d", owner.Addr, resp.StatusCode)
	}
	if !plain.WaitForLog("MOVED") {
		t.Error("the plain client's MOVED is not logged")
	}

	code, answer, body := revokeSession(t, gw, m.ID)
	if code != http.StatusOK || answer.Revoked != 1 || len(answer.Stores) != 1 || !answer.Stores[0].Revoked ||
		answer.Stores[0].Store != "redis cluster redis://"+cluster.Seed()+" prefix it:session:" {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if n, _ := cc.Exists(ctx, key).Result(); n != 0 {
		t.Error("the revoked session is still in the cluster")
	}
	if after, resp := askMe(t, gw, login); resp.StatusCode != http.StatusOK || len(after.Session) != 0 {
		t.Errorf("the revoked session still opens: %d %+v", resp.StatusCode, after)
	}
}

// sentinelStore is the store block of a sentinel group.
func sentinelStore(g *redistest.SentinelGroup, more string) string {
	return "addresses " + strings.Join(g.SentinelAddrs(), " ") + "\n\t\t\tmaster_name " + g.MasterName + "\n\t\t\t" + more
}

// TestRedisSentinelFailoverUnderLoad forces a failover while four clients
// read and write their sessions through a gateway: every request gets 200,
// or 503 while the master changes, never another 5xx nor a hang, and the
// gateway then writes to the new master without a reload.
func TestRedisSentinelFailoverUnderLoad(t *testing.T) {
	g := redistest.StartSentinelGroup(t, "sessions")
	up := startUpstream(t, storeRoutes())
	gw := startGateway(t, up.Addr(), storeSite(sentinelStore(g, ""), ""))

	// A request that takes five seconds is a hang: the client's timeouts
	// are a second or two.
	loadClient := &http.Client{Timeout: 5 * time.Second}
	const workers, maxRequests = 4, 1000
	var sent, ok, unavailable, afterFailover atomic.Int64
	var failedOver atomic.Bool
	var mu sync.Mutex
	var bad []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			cookie := ""
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if sent.Add(1) > maxRequests {
					return
				}
				path := "/me"
				if i%2 == 0 {
					path = fmt.Sprintf("/set?k=w%d-%d", w, i)
				}
				req, _ := http.NewRequest(http.MethodGet, gw.URL+path, nil)
				if cookie != "" {
					req.Header.Set("Cookie", "session="+cookie)
				}
				start := time.Now()
				resp, err := loadClient.Do(req)
				if err != nil {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s after %s: %v", path, time.Since(start).Round(time.Millisecond), err))
					mu.Unlock()
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
					if failedOver.Load() {
						afterFailover.Add(1)
					}
				case http.StatusServiceUnavailable:
					unavailable.Add(1)
				default:
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s: %s", path, resp.Status))
					mu.Unlock()
				}
				for _, c := range resp.Cookies() {
					if c.Name == "session" && c.MaxAge >= 0 {
						cookie = c.Value
					}
				}
				time.Sleep(40 * time.Millisecond) // some 80 requests a second in all
			}
		})
	}

	started := time.Now()
	time.Sleep(time.Second)
	before := ok.Load()
	newMaster := g.Failover(t)
	failedOver.Store(true)
	switched := time.Since(started)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d requests in %s: %d ok (%d before the failover, %d after it), %d unavailable; the sentinels switched after %s",
		ok.Load()+unavailable.Load()+int64(len(bad)), time.Since(started).Round(time.Millisecond), ok.Load(), before, afterFailover.Load(), unavailable.Load(), switched.Round(time.Millisecond))
	for _, b := range bad {
		t.Error(b)
	}
	if before == 0 || afterFailover.Load() == 0 {
		t.Errorf("%d requests succeeded before the failover, %d after", before, afterFailover.Load())
	}

	if !gw.WaitForLog("new master") || !strings.Contains(gw.Log(), newMaster) {
		t.Error("the gateway's client does not log its switch to the new master")
	}

	// The gateway writes to the new master: a new session is there (the
	// old master, until the sentinels demote it, is a master nobody reads).
	master := g.Client(t, newMaster)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := get(t, gw.URL+"/login", "")
		if resp.StatusCode == http.StatusOK {
			login := sessionCookie(t, resp).Value
			m, _ := askMe(t, gw, login)
			if n, _ := master.Exists(context.Background(), "it:session:"+m.ID).Result(); n == 1 && m.Session["user"] == "alice" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ten seconds after the failover, the gateway does not write to the new master %s", newMaster)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRedisSentinelCredentials: sentinels that ask for a password of their
// own (requirepass) and a master that asks for another.
func TestRedisSentinelCredentials(t *testing.T) {
	const masterPassword, sentinelPassword = "it-master-password-1", "it-sentinel-password-2"
	g := redistest.StartSentinelGroup(t, "sessions", redistest.WithPassword(masterPassword), redistest.WithSentinelPassword(sentinelPassword))
	t.Setenv("IT_REDIS_PASSWORD", masterPassword)
	t.Setenv("IT_SENTINEL_PASSWORD", sentinelPassword)
	up := startUpstream(t, storeRoutes())
	good := startGateway(t, up.Addr(), storeSite(sentinelStore(g, "password {env.IT_REDIS_PASSWORD}\n\t\t\tsentinel_password {env.IT_SENTINEL_PASSWORD}"), ""))
	literal := startGateway(t, up.Addr(), storeSite(sentinelStore(g, "password {env.IT_REDIS_PASSWORD}\n\t\t\tsentinel_password "+sentinelPassword), ""))
	without := startGateway(t, up.Addr(), storeSite(sentinelStore(g, "password {env.IT_REDIS_PASSWORD}"), ""))

	resp, _ := get(t, good.URL+"/login", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	login := sessionCookie(t, resp).Value
	m, _ := askMe(t, good, login)
	if m.Session["user"] != "alice" {
		t.Fatalf("after login: %+v", m)
	}
	if n, _ := g.Client(t, g.Master.Addr).Exists(context.Background(), "it:session:"+m.ID).Result(); n != 1 {
		t.Error("the session is not on the master")
	}
	if m2, _ := askMe(t, literal, login); m2.Session["user"] != "alice" {
		t.Errorf("a literal sentinel_password: %+v", m2)
	}
	if !literal.WaitForLog("sentinel_password is written in the config itself") {
		t.Error("a literal sentinel_password is not warned about")
	}
	if strings.Contains(good.Log(), "written in the config itself") {
		t.Error("passwords from placeholders are warned about")
	}
	if _, resp := askMe(t, without, login); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("without sentinel_password: %d", resp.StatusCode)
	}
	// Caddy's debug log shows the config: the literal password is in it
	// (hence the warning), a placeholder's value is not.
	for _, gw := range []*gateway{good, without} {
		if log := gw.Log(); strings.Contains(log, masterPassword) || strings.Contains(log, sentinelPassword) {
			t.Errorf("the log reveals a password:\n%s", log)
		}
	}
}

// TestRedisTLSWithClientCertificate: a Redis that speaks only TLS and asks
// for a client certificate.
func TestRedisTLSWithClientCertificate(t *testing.T) {
	s := redistest.StartTLS(t)
	up := startUpstream(t, storeRoutes())
	site := func(tls string) string { return storeSite("address "+s.Addr+"\n\t\t\t"+tls, "") }
	good := startGateway(t, up.Addr(), site(fmt.Sprintf("tls {\n\t\t\t\tca %s\n\t\t\t\tcert %s\n\t\t\t\tkey %s\n\t\t\t\tserver_name %s\n\t\t\t}",
		s.CA, s.ClientCert, s.ClientKey, redistest.TLSServerName)))
	noCert := startGateway(t, up.Addr(), site("tls {\n\t\t\t\tca "+s.CA+"\n\t\t\t}"))
	otherCA := startGateway(t, up.Addr(), site(fmt.Sprintf("tls {\n\t\t\t\tca %s\n\t\t\t\tcert %s\n\t\t\t\tkey %s\n\t\t\t}", s.OtherCA, s.ClientCert, s.ClientKey)))
	wrongName := startGateway(t, up.Addr(), site(fmt.Sprintf("tls {\n\t\t\t\tca %s\n\t\t\t\tcert %s\n\t\t\t\tkey %s\n\t\t\t\tserver_name other.test\n\t\t\t}", s.CA, s.ClientCert, s.ClientKey)))
	noTLS := startGateway(t, up.Addr(), site(""))

	resp, _ := get(t, good.URL+"/login", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login over TLS: %d\n%s", resp.StatusCode, good.Log())
	}
	login := sessionCookie(t, resp).Value
	get(t, good.URL+"/cart", login)
	if m, _ := askMe(t, good, login); m.Session["user"] != "alice" || fmt.Sprint(m.Session["cart"]) != "[1 2]" {
		t.Errorf("over TLS: %+v", m)
	}
	for name, gw := range map[string]*gateway{"no client certificate": noCert, "another CA": otherCA, "another server name": wrongName, "no TLS": noTLS} {
		// fail_closed: the session cannot be read, and a new one cannot be
		// saved.
		if _, resp := askMe(t, gw, login); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s, read: %d", name, resp.StatusCode)
		}
		if resp, _ := get(t, gw.URL+"/login", ""); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s, login: %d", name, resp.StatusCode)
		}
	}
}

// TestRedisURLPasswordIsWarnedAbout: a password written in an address URL
// is as visible as a literal password, and warned about the same way; one
// from a placeholder inside the URL is not.
func TestRedisURLPasswordIsWarnedAbout(t *testing.T) {
	const password = "it-url-password-3"
	s := redistest.StartWithPassword(t, password)
	t.Setenv("IT_REDIS_PASSWORD", password)
	up := startUpstream(t, storeRoutes())
	literal := startGateway(t, up.Addr(), storeSite("address redis://:"+password+"@"+s.Addr+"/0", ""))
	placeholder := startGateway(t, up.Addr(), storeSite("address redis://:{env.IT_REDIS_PASSWORD}@"+s.Addr+"/0", ""))
	for _, gw := range []*gateway{literal, placeholder} {
		resp, _ := get(t, gw.URL+"/login", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		if m, _ := askMe(t, gw, sessionCookie(t, resp).Value); m.Session["user"] != "alice" {
			t.Errorf("after login: %+v", m)
		}
	}
	// Caddy's debug log shows the config: the literal password is in it
	// (hence the warning), a placeholder's value is not.
	if log := placeholder.Log(); strings.Contains(log, password) || strings.Contains(log, "written in the config itself") {
		t.Errorf("a password from a placeholder is shown or warned about:\n%s", log)
	}
	if !literal.WaitForLog("a store address carries a password written in the config itself") {
		t.Error("a password in the address URL is not warned about")
	}
}

// TestAdminRevokeWithOneStoreDown: one gateway, two Redis stores; with one
// down, a revocation in the other is a 200 that says which failed, and
// only with both down is it a 503.
func TestAdminRevokeWithOneStoreDown(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	up := startUpstream(t, storeRoutes())
	site := func(path, cookie string, s *redistest.Server) string {
		return `
	handle_path ` + path + `/* {
		session {
			secret {env.IT_SESSION_SECRET}
			cookie_name ` + cookie + `
			store redis {
				address redis://` + s.Addr + `/0
				key_prefix it:session:
			}
		}
		reverse_proxy {upstream}
	}`
	}
	gw := startGateway(t, up.Addr(), site("/a", "session", a)+site("/b", "session_b", b))
	resp, _ := get(t, gw.URL+"/a/login", "")
	login := sessionCookie(t, resp).Value
	m, _ := askMe(t, &gateway{URL: gw.URL + "/a"}, login)
	if m.Session["user"] != "alice" {
		t.Fatalf("after login: %+v", m)
	}
	if resp, _ := get(t, gw.URL+"/b/login", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("login on /b: %d", resp.StatusCode)
	}

	b.Stop()
	code, answer, body := revokeSession(t, gw, m.ID)
	if code != http.StatusOK || answer.Revoked != 1 || answer.Error != "" || len(answer.Stores) != 2 {
		t.Fatalf("revoke with one store down: %d %s", code, body)
	}
	for _, s := range answer.Stores {
		switch s.Store {
		case "redis redis://" + a.Addr + "/0 prefix it:session:":
			if !s.Revoked || s.Error != "" {
				t.Errorf("the store that is up: %+v", s)
			}
		case "redis redis://" + b.Addr + "/0 prefix it:session:":
			if s.Revoked || s.Error == "" {
				t.Errorf("the store that is down: %+v", s)
			}
		default:
			t.Errorf("unknown store %q", s.Store)
		}
	}
	if after, _ := askMe(t, &gateway{URL: gw.URL + "/a"}, login); len(after.Session) != 0 {
		t.Errorf("the revoked session still opens: %+v", after)
	}

	a.Stop()
	code, answer, body = revokeSession(t, gw, m.ID)
	if code != http.StatusServiceUnavailable || answer.Revoked != 0 || answer.Error == "" || len(answer.Stores) != 2 ||
		answer.Stores[0].Error == "" || answer.Stores[1].Error == "" {
		t.Fatalf("revoke with both stores down: %d %s", code, body)
	}
}

// TestValidateRefusesBadRedisTLSFiles: caddy validate reads the TLS files,
// and names a missing or bad one without quoting it.
func TestValidateRefusesBadRedisTLSFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("IT-SECRET-CONTENT, not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for name, tt := range map[string]struct {
		tls  string
		want []string
	}{
		"missing CA":      {"ca " + missing, []string{"tls_ca", missing, "no such file"}},
		"CA that is junk": {"ca " + garbage, []string{"tls_ca", garbage, "no PEM certificate"}},
		"missing key":     {"cert " + garbage + "\n\t\t\t\tkey " + missing, []string{"tls_key", missing}},
		"junk key pair":   {"cert " + garbage + "\n\t\t\t\tkey " + garbage, []string{"tls_cert " + garbage}},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Caddyfile")
			caddyfile := ":8080 {\n" + storeSite("address 127.0.0.1:6379\n\t\t\ttls {\n\t\t\t\t"+tt.tls+"\n\t\t\t}", "") + "}\n"
			if err := os.WriteFile(path, []byte(strings.ReplaceAll(caddyfile, "{upstream}", "127.0.0.1:9")), 0o600); err != nil {
				t.Fatal(err)
			}
			out, ok := caddyCommand(t, "validate", "--config", path, "--adapter", "caddyfile")
			if ok {
				t.Fatalf("caddy validate accepted:\n%s", caddyfile)
			}
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "IT-SECRET-CONTENT") {
				t.Errorf("the output quotes the file:\n%s", out)
			}
		})
	}
}
