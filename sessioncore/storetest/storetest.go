// Package storetest is the conformance suite of sessioncore.Store: what
// every store must do for the gateway's guarantees to hold (no ID brought
// back to life, changes applied key by key, concurrent changes to
// different keys all kept). A store in its own package runs it from a
// test:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) sessioncore.Store { return mystore.New(...) })
//	}
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// Run runs the suite against stores made by newStore, one per subtest.
func Run(t *testing.T, newStore func(t *testing.T) sessioncore.Store) {
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, newStore(t)) })
	t.Run("ConcurrentKeysAllPersist", func(t *testing.T) { testConcurrentKeys(t, newStore(t)) })
	t.Run("ClearKeepsPrivateFields", func(t *testing.T) { testClearKeepsPrivate(t, newStore(t)) })
}

// NewID returns a random ID of the form the gateway's sessions have.
func NewID(t testing.TB) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Commit commits c to the session id and fails the test unless the
// session exists afterwards.
func Commit(t testing.TB, store sessioncore.Store, id string, c sessioncore.Changes, ttl time.Duration) {
	t.Helper()
	if exists, err := store.Commit(context.Background(), id, c, ttl); err != nil || !exists {
		t.Fatalf("commit: exists=%v err=%v", exists, err)
	}
}

// ExpectValues fails the test unless the session id holds want, a JSON
// object with its keys sorted.
func ExpectValues(t testing.TB, store sessioncore.Store, id, want string) {
	t.Helper()
	values, found, err := store.Load(context.Background(), id)
	if err != nil || !found {
		t.Fatalf("Load: found=%v err=%v", found, err)
	}
	got, err := json.Marshal(values) // sorted keys, compact values
	if err != nil || string(got) != want {
		t.Errorf("stored %s (%v), want %s", got, err, want)
	}
}

func testLifecycle(t *testing.T, store sessioncore.Store) {
	ctx := context.Background()
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	id := NewID(t)

	if _, found, err := store.Load(ctx, id); found || err != nil {
		t.Fatalf("unknown id: found=%v err=%v", found, err)
	}
	// Without Create, an unknown ID is not brought to life.
	if exists, err := store.Commit(ctx, id, sessioncore.Changes{Set: map[string]json.RawMessage{"a": raw(`1`)}}, time.Hour); exists || err != nil {
		t.Fatalf("commit to an unknown id: exists=%v err=%v", exists, err)
	}
	if _, found, _ := store.Load(ctx, id); found {
		t.Fatal("a commit without Create made a session")
	}
	Commit(t, store, id, sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"a": raw(`1`), "b": raw(`{"x":[1]}`)}}, time.Hour)
	ExpectValues(t, store, id, `{"a":1,"b":{"x":[1]}}`)

	Commit(t, store, id, sessioncore.Changes{Set: map[string]json.RawMessage{"c": raw(`"z"`)}, Deleted: []string{"a"}}, time.Hour)
	ExpectValues(t, store, id, `{"b":{"x":[1]},"c":"z"}`)

	Commit(t, store, id, sessioncore.Changes{Clear: true, Set: map[string]json.RawMessage{"only": raw(`true`)}}, time.Hour)
	ExpectValues(t, store, id, `{"only":true}`)

	Commit(t, store, id, sessioncore.Changes{}, time.Hour) // a refresh changes nothing
	ExpectValues(t, store, id, `{"only":true}`)

	if found, err := store.Delete(ctx, id); !found || err != nil {
		t.Errorf("Delete: found=%v err=%v", found, err)
	}
	if found, err := store.Delete(ctx, id); found || err != nil {
		t.Errorf("second Delete: found=%v err=%v", found, err)
	}
	if _, found, _ := store.Load(ctx, id); found {
		t.Error("deleted session still found")
	}

	// Nor does a deleted one come back.
	if exists, _ := store.Commit(ctx, id, sessioncore.Changes{Set: map[string]json.RawMessage{"late": raw(`1`)}}, time.Hour); exists {
		t.Error("a commit brought back a deleted session")
	}

	// Removing the last key removes the session.
	Commit(t, store, id, sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"a": raw(`1`)}}, time.Hour)
	if exists, err := store.Commit(ctx, id, sessioncore.Changes{Deleted: []string{"a"}}, time.Hour); exists || err != nil {
		t.Errorf("emptied: exists=%v err=%v", exists, err)
	}
	if _, found, _ := store.Load(ctx, id); found {
		t.Error("an emptied session is still found")
	}
}

func testConcurrentKeys(t *testing.T, store sessioncore.Store) {
	ctx := context.Background()
	id := NewID(t)
	Commit(t, store, id, sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"user": json.RawMessage(`"a"`)}}, time.Hour)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			key := fmt.Sprintf("k%02d", i)
			if _, err := store.Commit(ctx, id, sessioncore.Changes{Set: map[string]json.RawMessage{key: json.RawMessage(fmt.Sprint(i))}}, time.Hour); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	values, _, err := store.Load(ctx, id)
	if err != nil || len(values) != 51 {
		t.Errorf("%d of 50 keys persisted (%v)", len(values)-1, err)
	}
}

// A replacement (Clear) removes the session's values but not its private
// fields, which only Set, Deleted or Delete change.
func testClearKeepsPrivate(t *testing.T, store sessioncore.Store) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	private := sessioncore.PrivatePrefix + "oidc"
	id := NewID(t)
	Commit(t, store, id, sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"a": raw(`1`), private: raw(`"t0"`)}}, time.Hour)
	Commit(t, store, id, sessioncore.Changes{Set: map[string]json.RawMessage{private: raw(`"t1"`)}}, time.Hour)
	Commit(t, store, id, sessioncore.Changes{Clear: true, Set: map[string]json.RawMessage{"b": raw(`2`)}}, time.Hour)
	ExpectValues(t, store, id, `{"\u0000oidc":"t1","b":2}`)
	Commit(t, store, id, sessioncore.Changes{Clear: true, Set: map[string]json.RawMessage{"c": raw(`3`)}, Deleted: []string{private}}, time.Hour)
	ExpectValues(t, store, id, `{"c":3}`)
}
