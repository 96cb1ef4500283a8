package redisstore

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/caddy-session/internal/redistest"
	"github.com/sessiongate/caddy-session/sessioncore"
	"github.com/sessiongate/caddy-session/sessioncore/storetest"
)

// cachedStore returns a store whose loads go through a client with
// go-redis's client-side caching, as one gateway process has it, and that
// client's cache.
//
// MaxStaleness is a minute, so that only invalidations can make a change
// by someone else visible within the tests' 2 s.
func cachedStore(t *testing.T, addr, prefix string) *Store {
	t.Helper()
	writer := redis.NewClient(&redis.Options{Addr: addr})
	store, err := NewCached(writer, redis.Options{Addr: addr}, CacheOptions{MaxEntries: 1000, MaxStaleness: time.Minute}, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(); writer.Close() })
	return store
}

func TestCachedContract(t *testing.T) {
	server := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) sessioncore.Store {
		return cachedStore(t, server.Addr, "test:"+storetest.NewID(t)+":")
	})
}

// A gateway reads its own writes at once, however soon it reads again,
// and a change another gateway makes reaches it by Redis's invalidation,
// well before MaxStaleness (a minute here).
func TestCachedLoadsSeeWrites(t *testing.T) {
	ctx := context.Background()
	server := redistest.Start(t)
	one := cachedStore(t, server.Addr, "shared:")
	other := cachedStore(t, server.Addr, "shared:")
	id := storetest.NewID(t)
	set := func(store *Store, v int) {
		t.Helper()
		storetest.Commit(t, store, id, sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"n": json.RawMessage(strconv.Itoa(v))}}, time.Hour)
	}
	load := func(store *Store) string {
		t.Helper()
		values, found, err := store.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			return "gone"
		}
		return string(values["n"])
	}

	set(one, 0)
	for i := 1; i <= 100; i++ {
		for range 4 {
			if got := load(one); got != strconv.Itoa(i-1) {
				t.Fatalf("write %d: read %s back", i-1, got)
			}
		}
		set(one, i)
		if got := load(one); got != strconv.Itoa(i) {
			t.Fatalf("read %s right after writing %d", got, i)
		}
	}
	// Of each four loads between writes, the first fetches (the write's
	// invalidation may still be on its way, so it is not kept), the second
	// fetches and keeps, the others are answered from the cache.
	if hits := one.CacheStats().Hits; hits < 150 {
		t.Fatalf("%d cache hits in 500 loads: the loads are not cached", hits)
	}

	eventually := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for load(one) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still read %s after 2 s, want %s", what, load(one), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	load(one) // cached again
	set(other, 1000)
	eventually("a change by another gateway", "1000")
	load(one)
	if _, err := other.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	eventually("a revocation by another gateway", "gone")
}

// go-redis names cached keys within a namespace of database and ACL user;
// the store predicts it to evict what it writes. With an ACL user, loads
// are still cached, and still read back what was written. The user is
// denied every CLIENT subcommand but TRACKING, which the README says a
// user needs it.
func TestCachedWithACLUser(t *testing.T) {
	ctx := context.Background()
	server := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: server.Addr})
	defer admin.Close()
	if err := admin.Do(ctx, "ACL", "SETUSER", "gateway", "on", ">gateway-password", "~*", "+@all", "-client", "+client|tracking").Err(); err != nil {
		t.Fatal(err)
	}
	options := redis.Options{Addr: server.Addr, Username: "gateway", Password: "gateway-password"}
	writer := redis.NewClient(&options)
	defer writer.Close()
	store, err := NewCached(writer, options, CacheOptions{MaxEntries: 10, MaxStaleness: time.Minute}, "acl:")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	id := storetest.NewID(t)
	for i := range 3 {
		storetest.Commit(t, store, id, sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"n": json.RawMessage(strconv.Itoa(i))}}, time.Hour)
		for range 3 {
			if values, _, err := store.Load(ctx, id); err != nil || string(values["n"]) != strconv.Itoa(i) {
				t.Fatalf("after writing %d: %s, %v", i, values["n"], err)
			}
		}
	}
	if hits := store.CacheStats().Hits; hits == 0 {
		t.Fatal("no cache hit with an ACL user")
	}
}

// A key outside the namespace the store predicts is fetched uncached,
// never kept where forget could not evict it.
func TestLoadCacheKeepsOnlyPredictedKeys(t *testing.T) {
	cache := &loadCache{LocalCache: redis.NewLocalCache(redis.CacheConfig{MaxEntries: 10}), namespace: cacheNamespace(0, "")}
	if token, fetch := cache.Reserve("hgetall other", []string{"1\x000:\x00session:x"}); token != 0 || !fetch {
		t.Errorf("a foreign namespace was reserved: token %d, fetch %v", token, fetch)
	}
	token, fetch := cache.Reserve("hgetall mine", []string{cacheNamespace(0, "") + "session:x"})
	if token == 0 || !fetch {
		t.Fatalf("the predicted namespace was not reserved: token %d, fetch %v", token, fetch)
	}
	cache.FulfillOwned("hgetall mine", token, 0, []byte("reply"))
	cache.forget("session:x")
	if cache.Len() != 0 {
		t.Error("forget left the entry")
	}
}

// LoadFresh asks Redis, whatever the cache holds: a session deleted
// through another gateway a moment ago is gone for it at once.
func TestCachedLoadFreshAsksRedis(t *testing.T) {
	ctx := context.Background()
	server := redistest.Start(t)
	one := cachedStore(t, server.Addr, "fresh:")
	other := cachedStore(t, server.Addr, "fresh:")
	for i := range 50 {
		id := storetest.NewID(t)
		storetest.Commit(t, other, id, sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"n": json.RawMessage(strconv.Itoa(i))}}, time.Hour)
		for range 2 {
			if _, found, err := one.Load(ctx, id); err != nil || !found {
				t.Fatal(found, err)
			}
		}
		if _, err := other.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, found, err := one.LoadFresh(ctx, id); err != nil || found {
			t.Fatalf("LoadFresh right after another gateway's delete: found %v, %v", found, err)
		}
	}
}
