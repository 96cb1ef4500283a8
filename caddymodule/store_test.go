package caddymodule

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A store unloaded by a reload stays open while a request of the old
// config still uses it, and closes once none does.
func TestUnloadedStoreClosesWhenIdle(t *testing.T) {
	var closed atomic.Bool
	store := pooledStore{use: new(storeUse), close: func() error { closed.Store(true); return nil }}
	store.use.acquire()
	if err := store.Destruct(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * storeIdleCheck)
	if closed.Load() {
		t.Fatal("the store closed under a request still using it")
	}
	store.use.release()
	deadline := time.Now().Add(10 * storeIdleCheck)
	for !closed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the store did not close once idle")
		}
		time.Sleep(storeIdleCheck / 5)
	}
}

// A reload that changes a memory store's bounds keeps the store, and its
// sessions, and applies the new bounds.
func TestMemoryStoreIsKeptAcrossBoundChanges(t *testing.T) {
	first, key1, err := openStore(&StoreConfig{Type: storeMemory, MaxSessions: 100}, "sid-keep")
	if err != nil {
		t.Fatal(err)
	}
	defer stores.Delete(key1)
	second, key2, err := openStore(&StoreConfig{Type: storeMemory, MaxSessions: 200, MaxMemory: 1 << 20}, "sid-keep")
	if err != nil {
		t.Fatal(err)
	}
	defer stores.Delete(key2)
	if first.memory != second.memory {
		t.Fatal("a change of bounds made a new memory store")
	}
	other, key3, err := openStore(&StoreConfig{Type: storeMemory}, "another-cookie")
	if err != nil {
		t.Fatal(err)
	}
	defer stores.Delete(key3)
	if other.memory == first.memory {
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
