package caddymodule

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/caddy-session/internal/redistest"
	"github.com/sessiongate/caddy-session/sessioncore"
	"github.com/sessiongate/caddy-session/sessioncore/redisstore"
	"github.com/sessiongate/caddy-session/sessioncore/storetest"
)

// A store unloaded by a reload stays open while a request of the old
// config still uses it, and closes once none has for the quiet period.
func TestUnloadedStoreClosesWhenIdle(t *testing.T) {
	defer func(check, quiet time.Duration) { storeIdleCheck, storeQuietPeriod = check, quiet }(storeIdleCheck, storeQuietPeriod)
	storeIdleCheck, storeQuietPeriod = 20*time.Millisecond, 200*time.Millisecond
	var closed atomic.Bool
	store := pooledStore{use: new(storeUse), close: func() error { closed.Store(true); return nil }}
	store.use.acquire()
	if err := store.Destruct(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * storeQuietPeriod)
	if closed.Load() {
		t.Fatal("the store closed under a request still using it")
	}
	store.use.release()
	time.Sleep(storeQuietPeriod / 2)
	if closed.Load() {
		t.Fatal("the store closed before it had been quiet for the quiet period")
	}
	deadline := time.Now().Add(10 * storeQuietPeriod)
	for !closed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the store did not close once idle")
		}
		time.Sleep(storeIdleCheck)
	}
}

// A memory store is the one of its cookie name. The handlers that use it
// ask for bounds; it keeps the largest, and a handler that goes (a reload
// done, or a config refused) takes its own with it.
func TestMemoryStoreBoundsAreTheLargestAskedFor(t *testing.T) {
	limits := func(p pooledStore) int {
		sessions := 0
		p.bounds.mu.Lock()
		for _, l := range p.bounds.asked {
			sessions = max(sessions, l.sessions)
		}
		p.bounds.mu.Unlock()
		return sessions
	}
	siteA, releaseA, err := openStore(&StoreConfig{Type: storeMemory, MaxSessions: 1000}, "sid-bounds")
	if err != nil {
		t.Fatal(err)
	}
	defer releaseA()
	siteB, releaseB, err := openStore(&StoreConfig{Type: storeMemory, MaxSessions: 1}, "sid-bounds")
	if err != nil {
		t.Fatal(err)
	}
	if siteA.bounds != siteB.bounds {
		t.Fatal("one cookie name, two memory stores")
	}
	if got := limits(siteA); got != 1000 {
		t.Errorf("with both sites: %d sessions, want the larger bound, 1000", got)
	}
	// Site A's users are not evicted by site B's bound.
	for _, id := range []string{"a1", "a2", "a3"} {
		storetest.Commit(t, siteA.Store, storetest.NewID(t)[:40]+id, sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"u": json.RawMessage(`1`)}}, time.Hour)
	}
	if n := siteA.bounds.store.Len(); n != 3 {
		t.Errorf("site A holds %d sessions, want 3: site B's bound evicted them", n)
	}
	releaseB() // site B's config refused, or unloaded
	if got := limits(siteA); got != 1000 {
		t.Errorf("after B went: %d sessions", got)
	}
	other, releaseOther, err := openStore(&StoreConfig{Type: storeMemory}, "another-cookie")
	if err != nil {
		t.Fatal(err)
	}
	defer releaseOther()
	if other.bounds == siteA.bounds {
		t.Error("two cookie names share a memory store")
	}
}

// TLS files renewed in place give the Redis store a new key in the pool, so
// a reload makes a client with the new certificates.
func TestRenewedTLSFilesMakeANewRedisStore(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := StoreConfig{Type: storeRedis, TLS: true, TLSCA: ca}
	before := c.poolKey("session")
	if err := os.WriteFile(ca, []byte("renewed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if after := c.poolKey("session"); after == before {
		t.Error("the pool key did not change with the CA file")
	}
	if got := describeStore(before); !strings.HasPrefix(got, "redis ") {
		t.Errorf("the admin API's description of the store: %q", got)
	}
}

// The client_cache counters add up every cache's hits and misses, and do
// not go back when a store closes (a reload that changed its settings).
func TestClientCacheCountersSurviveAClose(t *testing.T) {
	ctx := context.Background()
	server := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: server.Addr})
	defer client.Close()
	store, err := redisstore.NewCached(client, redis.Options{Addr: server.Addr}, redisstore.CacheOptions{MaxEntries: 10, MaxStaleness: time.Minute}, "counters:")
	if err != nil {
		t.Fatal(err)
	}
	registry := &cacheRegistry{live: map[*redisstore.Store]struct{}{}}
	registry.add(store)
	if _, err := store.Commit(ctx, "id", sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"a": json.RawMessage(`1`)}}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, _, err := store.Load(ctx, "id"); err != nil {
			t.Fatal(err)
		}
	}
	hits, misses := registry.counts()
	if hits < 3 || misses < 1 {
		t.Fatalf("%d hits, %d misses of 5 loads", hits, misses)
	}
	registry.retire(store)
	store.Close()
	if h, m := registry.counts(); h != hits || m != misses {
		t.Errorf("after the close: %d hits and %d misses, before %d and %d", h, m, hits, misses)
	}
}
