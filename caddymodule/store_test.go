package caddymodule

import (
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
