package memstore

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
	"github.com/sessiongate/caddy-session/sessioncore/storetest"
)

// isEvicted reports whether the store records id as evicted.
func isEvicted(store *Store, id string) bool {
	store.mu.Lock()
	defer store.mu.Unlock()
	_, ok := store.evicted.get(id)
	return ok
}

// never is an expiry far enough away not to matter.
var never = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func has(r evictionRecord, id string) bool {
	_, ok := r.get(id)
	return ok
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sessioncore.Store { return New(1000, nil) })
}

// testClock is a clock that only moves when told to.
type testClock struct{ t time.Time }

func (c *testClock) Now() time.Time          { return c.t }
func (c *testClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

var testSecret = []byte("memstore-test-secret-0123456789abcdef")

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// requestWithCookie returns a request carrying the session cookie value.
func requestWithCookie(value string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if value != "" {
		r.Header.Set("Cookie", "session="+value)
	}
	return r
}

// cookieValue returns the value of the one session cookie h sets.
func cookieValue(t *testing.T, h http.Header) string {
	t.Helper()
	c, err := http.ParseSetCookie(h.Get("Set-Cookie"))
	if err != nil || c.Name != "session" {
		t.Fatalf("bad Set-Cookie %q: %v", h.Get("Set-Cookie"), err)
	}
	return c.Value
}

func TestMemoryStoreBoundsAndExpiry(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	store := New(3, clock.Now)
	set := sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"a": json.RawMessage(`1`)}}
	for _, id := range []string{"one", "two", "three"} {
		storetest.Commit(t, store, id, set, time.Hour)
	}
	_, _, _ = store.Load(ctx, "one") // "two" is now the least recently used
	storetest.Commit(t, store, "four", set, time.Hour)
	if _, found, _ := store.Load(ctx, "two"); found || store.Len() != 3 {
		t.Errorf("the least recently used session was not evicted (len %d)", store.Len())
	}
	clock.Advance(2 * time.Hour)
	if _, found, _ := store.Load(ctx, "one"); found {
		t.Error("an expired session was found")
	}
	// Expired sessions at the cold end go on the next write.
	storetest.Commit(t, store, "five", set, time.Hour)
	if store.Len() != 1 {
		t.Errorf("expired sessions were not swept: len %d", store.Len())
	}
}

func TestMemoryStoreBoundInBytes(t *testing.T) {
	ctx := context.Background()
	store := New(100, nil)
	var causes []string
	store.OnEvict(func(cause string) { causes = append(causes, cause) })
	big := func(n int) sessioncore.Changes {
		return sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"v": json.RawMessage(`"` + strings.Repeat("x", n) + `"`)}}
	}
	store.SetLimits(100, 11_000)
	for _, id := range []string{"a", "b", "c", "d"} {
		storetest.Commit(t, store, id, big(3000), time.Hour)
	}
	// Four sessions of about 3.6 KB do not fit in 11,000 bytes: the least
	// recently used goes.
	if _, found, _ := store.Load(ctx, "a"); found || store.Len() != 3 || store.Bytes() > 11_000 {
		t.Errorf("len %d, %d bytes; a found %v", store.Len(), store.Bytes(), found)
	}
	if !isEvicted(store, "a") || isEvicted(store, "b") {
		t.Error("the eviction record is wrong")
	}
	// Resized in place: the survivors stay while they fit.
	store.SetLimits(2, 1<<20)
	if store.Len() != 2 || !isEvicted(store, "b") {
		t.Errorf("after lowering max_sessions: len %d", store.Len())
	}
	if want := []string{EvictedForMemory, EvictedForSessions}; !slices.Equal(causes, want) {
		t.Errorf("eviction causes %q, want %q", causes, want)
	}
	// A growing session frees room for itself, never evicting itself.
	store.SetLimits(100, 5000)
	storetest.Commit(t, store, "d", big(4000), time.Hour)
	if _, found, _ := store.Load(ctx, "d"); !found || store.Len() != 1 {
		t.Errorf("the session being written was evicted, or nothing was: len %d", store.Len())
	}
	// A deleted session is no longer counted as evicted; emptying frees
	// its bytes.
	must(t, func() error { _, err := store.Delete(ctx, "a"); return err }())
	if isEvicted(store, "a") {
		t.Error("a revoked session still counts as evicted")
	}
	if _, err := store.Commit(ctx, "d", sessioncore.Changes{Clear: true}, time.Hour); err != nil || store.Bytes() != 0 {
		t.Errorf("an emptied store holds %d bytes (%v)", store.Bytes(), err)
	}
}

func TestEvictionRecordForgetsTheOldestAndKeepsReEvictions(t *testing.T) {
	r := newEvictionRecord(2)
	r.add("a", never)
	r.add("a", never) // evicted again (written back meanwhile), into the second slot
	r.add("b", never) // takes a's first slot: a stays, from its second
	if !has(r, "a") || !has(r, "b") {
		t.Errorf("a %v, b %v; want both", has(r, "a"), has(r, "b"))
	}
	r.add("c", never) // takes a's second slot: the oldest goes
	if has(r, "a") || !has(r, "b") || !has(r, "c") {
		t.Errorf("a %v, b %v, c %v; want b and c", has(r, "a"), has(r, "b"), has(r, "c"))
	}
	r.forget("b")
	if has(r, "b") {
		t.Error("b is still recorded after forget")
	}
}

// A session evicted under memory pressure while a request used it is
// written back whole by that request: its change is not lost, and the
// cookie keeps working. A revoked one is never written back.
func TestEvictedSessionIsWrittenBackByItsRequest(t *testing.T) {
	ctx := context.Background()
	store := New(1, nil)
	codec, _ := sessioncore.NewSecureCookieCodec(testSecret)
	manager, _ := sessioncore.NewManager(sessioncore.DefaultConfig(), codec, sessioncore.WithStore(store))
	login := func(user string) (*sessioncore.Session, string) {
		s, _ := manager.Open(requestWithCookie(""))
		must(t, s.Set("user", json.RawMessage(`"`+user+`"`)))
		h := http.Header{}
		_, err := manager.Save(ctx, s, h)
		must(t, err)
		return s, cookieValue(t, h)
	}
	_, aliceCookie := login("alice")
	inFlight, _ := manager.Open(requestWithCookie(aliceCookie))
	login("bob") // evicts alice: the store holds one session
	must(t, inFlight.Set("cart", json.RawMessage(`[1]`)))
	h := http.Header{}
	if _, err := manager.Save(ctx, inFlight, h); err != nil || h.Get("Set-Cookie") == "" {
		t.Fatalf("save after eviction: %v, Set-Cookie %q", err, h.Get("Set-Cookie"))
	}
	if s, outcome := manager.Open(requestWithCookie(aliceCookie)); outcome != sessioncore.OutcomeValid || s.String() != `{"cart":[1],"user":"alice"}` {
		t.Errorf("after the write-back: %s %s", outcome, s)
	}

	// Revoked while in flight: gone for good.
	inFlight, _ = manager.Open(requestWithCookie(aliceCookie))
	_, _ = store.Delete(ctx, inFlight.ID())
	must(t, inFlight.Set("late", json.RawMessage(`1`)))
	h = http.Header{}
	if _, err := manager.Save(ctx, inFlight, h); err != nil || h.Get("Set-Cookie") != "" {
		t.Errorf("a revoked session was saved: %v %q", err, h.Get("Set-Cookie"))
	}
	if _, outcome := manager.Open(requestWithCookie(aliceCookie)); outcome != sessioncore.OutcomeUnknownID {
		t.Errorf("a revoked session opens: %s", outcome)
	}
}

// The ways a write-back must not bring a session back, and the one where
// two requests restore the same session.
func TestRestoreNeverResurrects(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	set := func(k, v string) sessioncore.Changes {
		return sessioncore.Changes{Set: map[string]json.RawMessage{k: json.RawMessage(v)}}
	}
	login := func(store *Store, id string) {
		storetest.Commit(t, store, id, sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"user": json.RawMessage(`"alice"`)}}, time.Hour)
	}
	evict := func(store *Store, id string) {
		store.SetLimits(1, NoMemoryLimit)
		login(store, "other-"+id)
		if !isEvicted(store, id) {
			t.Fatalf("%s was not evicted", id)
		}
	}
	values := map[string]json.RawMessage{"user": json.RawMessage(`"alice"`), "cart": json.RawMessage(`[1]`)}

	t.Run("evicted: restored whole", func(t *testing.T) {
		store := New(10, clock.Now)
		login(store, "x")
		evict(store, "x")
		if ok, err := store.Restore(ctx, "x", values, set("cart", `[1]`), time.Hour); !ok || err != nil {
			t.Fatalf("Restore = %v, %v", ok, err)
		}
		storetest.ExpectValues(t, store, "x", `{"cart":[1],"user":"alice"}`)
		// A second request restoring it too applies only its own change.
		if ok, _ := store.Restore(ctx, "x", map[string]json.RawMessage{"user": json.RawMessage(`"alice"`)}, set("seen", `true`), time.Hour); !ok {
			t.Fatal("the second restore failed")
		}
		storetest.ExpectValues(t, store, "x", `{"cart":[1],"seen":true,"user":"alice"}`)
	})
	t.Run("revoked after the eviction", func(t *testing.T) {
		store := New(10, clock.Now)
		login(store, "x")
		evict(store, "x")
		_, _ = store.Delete(ctx, "x")
		if ok, _ := store.Restore(ctx, "x", values, set("cart", `[1]`), time.Hour); ok {
			t.Error("a revoked session was restored")
		}
	})
	t.Run("expired after the eviction", func(t *testing.T) {
		store := New(10, clock.Now)
		login(store, "x")
		evict(store, "x")
		clock.Advance(2 * time.Hour)
		if ok, _ := store.Restore(ctx, "x", values, set("cart", `[1]`), time.Hour); ok {
			t.Error("an expired session was restored")
		}
	})
}

// A logout that removes the last key of a session the store had evicted
// keeps it gone: a slow request of the same session cannot write it back.
func TestLogoutOfAnEvictedSessionSticks(t *testing.T) {
	ctx := context.Background()
	store := New(1, nil)
	codec, _ := sessioncore.NewSecureCookieCodec(testSecret)
	manager, _ := sessioncore.NewManager(sessioncore.DefaultConfig(), codec, sessioncore.WithStore(store))
	s, _ := manager.Open(requestWithCookie(""))
	must(t, s.Set("user", json.RawMessage(`"alice"`)))
	h := http.Header{}
	_, err := manager.Save(ctx, s, h)
	must(t, err)
	cookie := cookieValue(t, h)

	slow, _ := manager.Open(requestWithCookie(cookie))
	logout, _ := manager.Open(requestWithCookie(cookie))
	bob, _ := manager.Open(requestWithCookie(""))
	must(t, bob.Set("user", json.RawMessage(`"bob"`)))
	_, err = manager.Save(ctx, bob, http.Header{}) // evicts alice
	must(t, err)
	must(t, logout.Delete("user"))
	if action, err := manager.Save(ctx, logout, http.Header{}); err != nil || action != sessioncore.CookieDeleted {
		t.Fatalf("logout: %s %v", action, err)
	}
	must(t, slow.Set("last_seen", json.RawMessage(`1`)))
	h = http.Header{}
	if _, err := manager.Save(ctx, slow, h); err != nil || h.Get("Set-Cookie") != "" {
		t.Errorf("the slow request wrote the logged-out session back: %v %q", err, h.Get("Set-Cookie"))
	}
	if _, outcome := manager.Open(requestWithCookie(cookie)); outcome != sessioncore.OutcomeUnknownID {
		t.Errorf("the logged-out session opens: %s", outcome)
	}
}
