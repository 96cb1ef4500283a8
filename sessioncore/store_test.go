package sessioncore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/caddy-session/internal/redistest"
)

// storeFactories are the stores every contract test runs against.
var storeFactories = []struct {
	name string
	make func(t *testing.T) Store
}{
	{"memory", func(t *testing.T) Store { return NewMemoryStore(1000, nil) }},
	{"redis", func(t *testing.T) Store {
		server := redistest.Start(t)
		client := redis.NewClient(&redis.Options{Addr: server.Addr})
		t.Cleanup(func() { client.Close() })
		return NewRedisStore(client, "test:session:")
	}},
}

func TestStoreContract(t *testing.T) {
	ctx := context.Background()
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	for _, f := range storeFactories {
		t.Run(f.name, func(t *testing.T) {
			store := f.make(t)
			id, _ := newSessionID()

			if _, found, err := store.Load(ctx, id); found || err != nil {
				t.Fatalf("unknown id: found=%v err=%v", found, err)
			}
			// Without Create, an unknown ID is not brought to life.
			if exists, err := store.Commit(ctx, id, Changes{Set: map[string]json.RawMessage{"a": raw(`1`)}}, time.Hour); exists || err != nil {
				t.Fatalf("commit to an unknown id: exists=%v err=%v", exists, err)
			}
			if _, found, _ := store.Load(ctx, id); found {
				t.Fatal("a commit without Create made a session")
			}
			commitOK(t, store, id, Changes{Create: true, Set: map[string]json.RawMessage{"a": raw(`1`), "b": raw(`{"x":[1]}`)}}, time.Hour)
			expectValues(t, store, id, `{"a":1,"b":{"x":[1]}}`)

			commitOK(t, store, id, Changes{Set: map[string]json.RawMessage{"c": raw(`"z"`)}, Deleted: []string{"a"}}, time.Hour)
			expectValues(t, store, id, `{"b":{"x":[1]},"c":"z"}`)

			commitOK(t, store, id, Changes{Clear: true, Set: map[string]json.RawMessage{"only": raw(`true`)}}, time.Hour)
			expectValues(t, store, id, `{"only":true}`)

			commitOK(t, store, id, Changes{}, time.Hour) // a refresh changes nothing
			expectValues(t, store, id, `{"only":true}`)

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
			if exists, _ := store.Commit(ctx, id, Changes{Set: map[string]json.RawMessage{"late": raw(`1`)}}, time.Hour); exists {
				t.Error("a commit brought back a deleted session")
			}

			// Removing the last key removes the session.
			commitOK(t, store, id, Changes{Create: true, Set: map[string]json.RawMessage{"a": raw(`1`)}}, time.Hour)
			if exists, err := store.Commit(ctx, id, Changes{Deleted: []string{"a"}}, time.Hour); exists || err != nil {
				t.Errorf("emptied: exists=%v err=%v", exists, err)
			}
			if _, found, _ := store.Load(ctx, id); found {
				t.Error("an emptied session is still found")
			}
		})
	}
}

func TestStoreConcurrentKeysAllPersist(t *testing.T) {
	ctx := context.Background()
	for _, f := range storeFactories {
		t.Run(f.name, func(t *testing.T) {
			store := f.make(t)
			id, _ := newSessionID()
			commitOK(t, store, id, Changes{Create: true, Set: map[string]json.RawMessage{"user": json.RawMessage(`"a"`)}}, time.Hour)
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Go(func() {
					key := fmt.Sprintf("k%02d", i)
					if _, err := store.Commit(ctx, id, Changes{Set: map[string]json.RawMessage{key: json.RawMessage(fmt.Sprint(i))}}, time.Hour); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			values, _, err := store.Load(ctx, id)
			if err != nil || len(values) != 51 {
				t.Errorf("%d of 50 keys persisted (%v)", len(values)-1, err)
			}
		})
	}
}

func TestRedisStoreExpiresWithTheLifetime(t *testing.T) {
	ctx := context.Background()
	server := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: server.Addr})
	defer client.Close()
	store := NewRedisStore(client, "ttl:")
	id, _ := newSessionID()
	commitOK(t, store, id, Changes{Create: true, Set: map[string]json.RawMessage{"a": json.RawMessage(`1`)}}, 90*time.Minute)
	if ttl, err := store.TTL(ctx, id); err != nil || ttl <= 89*time.Minute || ttl > 90*time.Minute {
		t.Errorf("TTL %s, %v", ttl, err)
	}
	// A refresh moves the expiry without touching the values.
	commitOK(t, store, id, Changes{}, 3*time.Hour)
	if ttl, _ := store.TTL(ctx, id); ttl <= 2*time.Hour {
		t.Errorf("TTL after refresh %s", ttl)
	}
	// A value that is not JSON (written by someone else) is refused.
	client.HSet(ctx, "ttl:"+id, "bad", "not json\r\nX-Injected: 1")
	if _, _, err := store.Load(ctx, id); !errors.Is(err, ErrUndecodable) {
		t.Errorf("Load of a foreign value: %v", err)
	}
}

func TestMemoryStoreBoundsAndExpiry(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: testEpoch}
	store := NewMemoryStore(3, clock.Now)
	set := Changes{Create: true, Set: map[string]json.RawMessage{"a": json.RawMessage(`1`)}}
	for _, id := range []string{"one", "two", "three"} {
		commitOK(t, store, id, set, time.Hour)
	}
	_, _, _ = store.Load(ctx, "one") // "two" is now the least recently used
	commitOK(t, store, "four", set, time.Hour)
	if _, found, _ := store.Load(ctx, "two"); found || store.Len() != 3 {
		t.Errorf("the least recently used session was not evicted (len %d)", store.Len())
	}
	clock.Advance(2 * time.Hour)
	if _, found, _ := store.Load(ctx, "one"); found {
		t.Error("an expired session was found")
	}
	// Expired sessions at the cold end go on the next write.
	commitOK(t, store, "five", set, time.Hour)
	if store.Len() != 1 {
		t.Errorf("expired sessions were not swept: len %d", store.Len())
	}
}

// failingStore is a store that is down.
type failingStore struct{}

var errDown = fmt.Errorf("%w: connection refused", ErrStore)

func (failingStore) Load(context.Context, string) (map[string]json.RawMessage, bool, error) {
	return nil, false, errDown
}
func (failingStore) Commit(context.Context, string, Changes, time.Duration) (bool, error) {
	return false, errDown
}
func (failingStore) Delete(context.Context, string) (bool, error) { return false, errDown }

func TestManagerWithStore(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: testEpoch}
	store := NewMemoryStore(100, clock.Now)
	codec, _ := NewSecureCookieCodec(testSecret)
	manager, err := NewManager(DefaultConfig(), codec, WithClock(clock.Now), WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	save := func(s *Session) string {
		t.Helper()
		h := http.Header{}
		if _, err := manager.Save(ctx, s, h); err != nil {
			t.Fatal(err)
		}
		if h.Get("Set-Cookie") == "" {
			return ""
		}
		return cookieValue(t, h, "session")
	}

	// A new session gets an ID and is stored; the cookie holds only the ID.
	s, _ := manager.Open(requestWithCookie("session", ""))
	_ = s.Set("user", json.RawMessage(`"alice"`))
	first := save(s)
	if !ValidSessionID(s.ID()) || store.Len() != 1 {
		t.Fatalf("id %q, %d stored", s.ID(), store.Len())
	}
	p, _, _ := codec.Decode("session", first)
	if string(p.JSON) != `{"sid":"`+s.ID()+`"}` {
		t.Errorf("the cookie carries %s", p.JSON)
	}

	// It opens again, and a change is saved key by key under the same ID.
	s2, outcome := manager.Open(requestWithCookie("session", first))
	if outcome != OutcomeValid || s2.String() != `{"user":"alice"}` || s2.ID() != s.ID() {
		t.Fatalf("reopened %s (%s) id %q", s2, outcome, s2.ID())
	}
	_ = s2.Set("cart", json.RawMessage(`[1]`))
	save(s2)
	if values, _, _ := store.Load(ctx, s.ID()); len(values) != 2 {
		t.Errorf("stored %v", values)
	}

	// Renewal moves the data to a new ID and kills the old one.
	s3, _ := manager.Open(requestWithCookie("session", first))
	_ = s3.Renew()
	renewed := save(s3)
	if s3.ID() == s.ID() || renewed == "" {
		t.Fatalf("renewal kept the ID")
	}
	if _, outcome := manager.Open(requestWithCookie("session", first)); outcome != OutcomeUnknownID {
		t.Errorf("the old ID still opens (%s)", outcome)
	}
	s4, _ := manager.Open(requestWithCookie("session", renewed))
	if s4.String() != `{"cart":[1],"user":"alice"}` {
		t.Errorf("renewed session holds %s", s4)
	}

	// An unknown ID is never adopted.
	forged, _ := codec.Encode("session", Payload{JSON: []byte(`{"sid":"` + s.ID() + `"}`), Issued: clock.t})
	s5, outcome := manager.Open(requestWithCookie("session", forged))
	if outcome != OutcomeUnknownID || s5.ID() != "" || s5.Len() != 0 {
		t.Errorf("unknown id: %s %q %s", outcome, s5.ID(), s5)
	}
	_ = s5.Set("x", json.RawMessage(`1`))
	save(s5)
	if s5.ID() == s.ID() {
		t.Error("the client's ID was adopted")
	}

	// Emptying deletes the session and the cookie.
	s6, _ := manager.Open(requestWithCookie("session", renewed))
	_ = s6.Clear()
	h := http.Header{}
	if action, err := manager.Save(ctx, s6, h); err != nil || action != CookieDeleted {
		t.Fatalf("%s %v", action, err)
	}
	if _, found, _ := store.Load(ctx, s4.ID()); found {
		t.Error("the emptied session is still stored")
	}
}

func TestManagerWithStoreDown(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: testEpoch}
	codec, _ := NewSecureCookieCodec(testSecret)
	id, _ := newSessionID()
	cookie, _ := codec.Encode("session", Payload{JSON: []byte(`{"sid":"` + id + `"}`), Issued: clock.t})
	manager, _ := NewManager(DefaultConfig(), codec, WithClock(clock.Now), WithStore(failingStore{}))

	s, outcome := manager.Open(requestWithCookie("session", cookie))
	if outcome != OutcomeUnavailable || !s.IsNull() || !errors.Is(s.Unavailable(), ErrStore) {
		t.Fatalf("open with the store down: %s, null=%v", outcome, s.IsNull())
	}
	// Without a cookie there is nothing to load; saving fails loudly.
	s, _ = manager.Open(requestWithCookie("session", ""))
	_ = s.Set("a", json.RawMessage(`1`))
	h := http.Header{}
	if _, err := manager.Save(ctx, s, h); !errors.Is(err, ErrStore) || len(h) != 0 {
		t.Errorf("save with the store down: %v, wrote %v", err, h)
	}
}

// commitOK commits and requires the session to exist afterwards.
func commitOK(t *testing.T, store Store, id string, c Changes, ttl time.Duration) {
	t.Helper()
	if exists, err := store.Commit(context.Background(), id, c, ttl); err != nil || !exists {
		t.Fatalf("commit: exists=%v err=%v", exists, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func expectValues(t *testing.T, store Store, id, want string) {
	t.Helper()
	values, found, err := store.Load(context.Background(), id)
	if err != nil || !found {
		t.Fatalf("Load: found=%v err=%v", found, err)
	}
	if got := string(appendObject(nil, values)); got != want {
		t.Errorf("stored %s, want %s", got, want)
	}
}

func TestManagerWithStoreConcurrentRequests(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: testEpoch}
	store := NewMemoryStore(100, clock.Now)
	codec, _ := NewSecureCookieCodec(testSecret)
	manager, _ := NewManager(DefaultConfig(), codec, WithClock(clock.Now), WithStore(store))
	save := func(s *Session) http.Header {
		t.Helper()
		h := http.Header{}
		if _, err := manager.Save(ctx, s, h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	s, _ := manager.Open(requestWithCookie("session", ""))
	_ = s.Set("a", json.RawMessage(`1`))
	cookie := cookieValue(t, save(s), "session")

	// Emptying by deleting keys spares what a concurrent request added.
	a, _ := manager.Open(requestWithCookie("session", cookie))
	b, _ := manager.Open(requestWithCookie("session", cookie))
	_ = b.Set("b", json.RawMessage(`2`))
	save(b)
	_ = a.Delete("a")
	if h := save(a); h.Get("Set-Cookie") != "" {
		t.Errorf("the cookie was deleted while the session still holds b: %q", h.Get("Set-Cookie"))
	}
	if values, _, _ := store.Load(ctx, s.ID()); string(appendObject(nil, values)) != `{"b":2}` {
		t.Errorf("stored %v", values)
	}

	// A request still running when another renews the session does not
	// bring the old ID back.
	slow, _ := manager.Open(requestWithCookie("session", cookie))
	renewer, _ := manager.Open(requestWithCookie("session", cookie))
	_ = renewer.Renew()
	save(renewer)
	_ = slow.Set("late", json.RawMessage(`true`))
	if h := save(slow); h.Get("Set-Cookie") != "" {
		t.Errorf("a cookie for the dead ID: %q", h.Get("Set-Cookie"))
	}
	if _, outcome := manager.Open(requestWithCookie("session", cookie)); outcome != OutcomeUnknownID {
		t.Errorf("the renewed-away ID opens again: %s", outcome)
	}
}

func TestRefreshOnlyStoreFailureIsNotAnError(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: testEpoch}
	memory := NewMemoryStore(10, clock.Now)
	codec, _ := NewSecureCookieCodec(testSecret)
	manager, _ := NewManager(DefaultConfig(), codec, WithClock(clock.Now), WithStore(memory))
	s, _ := manager.Open(requestWithCookie("session", ""))
	_ = s.SetPermanent(true)
	_ = s.Set("user", json.RawMessage(`"alice"`))
	h := http.Header{}
	if _, err := manager.Save(ctx, s, h); err != nil {
		t.Fatal(err)
	}
	cookie := cookieValue(t, h, "session")
	opened, _ := manager.Open(requestWithCookie("session", cookie))

	down, _ := NewManager(DefaultConfig(), codec, WithClock(clock.Now), WithStore(failingStore{}))
	h = http.Header{}
	if action, err := down.Save(ctx, opened, h); err != nil || action != CookieUntouched || h.Get("Set-Cookie") != "" {
		t.Errorf("a failed refresh: %s %v %v", action, err, h)
	}
}

func TestMemoryStoreBoundInBytes(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore(100, nil)
	var causes []string
	store.OnEvict(func(cause string) { causes = append(causes, cause) })
	big := func(n int) Changes {
		return Changes{Create: true, Set: map[string]json.RawMessage{"v": json.RawMessage(`"` + strings.Repeat("x", n) + `"`)}}
	}
	store.SetLimits(100, 10_000)
	for _, id := range []string{"a", "b", "c", "d"} {
		commitOK(t, store, id, big(3000), time.Hour)
	}
	// Four sessions of about 3.3 KB do not fit in 10,000 bytes: the least
	// recently used goes.
	if _, found, _ := store.Load(ctx, "a"); found || store.Len() != 3 || store.Bytes() > 10_000 {
		t.Errorf("len %d, %d bytes; a found %v", store.Len(), store.Bytes(), found)
	}
	if !store.Evicted("a") || store.Evicted("b") {
		t.Error("the eviction record is wrong")
	}
	// Resized in place: the survivors stay while they fit.
	store.SetLimits(2, 1<<20)
	if store.Len() != 2 || !store.Evicted("b") {
		t.Errorf("after lowering max_sessions: len %d", store.Len())
	}
	if want := []string{EvictedForMemory, EvictedForSessions}; !slices.Equal(causes, want) {
		t.Errorf("eviction causes %q, want %q", causes, want)
	}
	// A growing session frees room for itself, never evicting itself.
	store.SetLimits(100, 5000)
	commitOK(t, store, "d", big(4000), time.Hour)
	if _, found, _ := store.Load(ctx, "d"); !found || store.Len() != 1 {
		t.Errorf("the session being written was evicted, or nothing was: len %d", store.Len())
	}
	// A deleted session is no longer counted as evicted; emptying frees
	// its bytes.
	must(t, func() error { _, err := store.Delete(ctx, "a"); return err }())
	if store.Evicted("a") {
		t.Error("a revoked session still counts as evicted")
	}
	if _, err := store.Commit(ctx, "d", Changes{Clear: true}, time.Hour); err != nil || store.Bytes() != 0 {
		t.Errorf("an emptied store holds %d bytes (%v)", store.Bytes(), err)
	}
}

func TestEvictionRecordForgetsTheOldestAndKeepsReEvictions(t *testing.T) {
	r := newEvictionRecord(2)
	r.add("a")
	r.add("a") // evicted again (written back meanwhile), into the second slot
	r.add("b") // takes a's first slot: a stays, from its second
	if !r.has("a") || !r.has("b") {
		t.Errorf("a %v, b %v; want both", r.has("a"), r.has("b"))
	}
	r.add("c") // takes a's second slot: the oldest goes
	if r.has("a") || !r.has("b") || !r.has("c") {
		t.Errorf("a %v, b %v, c %v; want b and c", r.has("a"), r.has("b"), r.has("c"))
	}
	r.forget("b")
	if r.has("b") {
		t.Error("b is still recorded after forget")
	}
}

// A session evicted under memory pressure while a request used it is
// written back whole by that request: its change is not lost, and the
// cookie keeps working. A revoked one is never written back.
func TestEvictedSessionIsWrittenBackByItsRequest(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore(1, nil)
	codec, _ := NewSecureCookieCodec(testSecret)
	manager, _ := NewManager(DefaultConfig(), codec, WithStore(store))
	login := func(user string) (*Session, string) {
		s, _ := manager.Open(requestWithCookie("session", ""))
		must(t, s.Set("user", json.RawMessage(`"`+user+`"`)))
		h := http.Header{}
		_, err := manager.Save(ctx, s, h)
		must(t, err)
		return s, cookieValue(t, h, "session")
	}
	_, aliceCookie := login("alice")
	inFlight, _ := manager.Open(requestWithCookie("session", aliceCookie))
	login("bob") // evicts alice: the store holds one session
	must(t, inFlight.Set("cart", json.RawMessage(`[1]`)))
	h := http.Header{}
	if _, err := manager.Save(ctx, inFlight, h); err != nil || h.Get("Set-Cookie") == "" {
		t.Fatalf("save after eviction: %v, Set-Cookie %q", err, h.Get("Set-Cookie"))
	}
	if s, outcome := manager.Open(requestWithCookie("session", aliceCookie)); outcome != OutcomeValid || s.String() != `{"cart":[1],"user":"alice"}` {
		t.Errorf("after the write-back: %s %s", outcome, s)
	}

	// Revoked while in flight: gone for good.
	inFlight, _ = manager.Open(requestWithCookie("session", aliceCookie))
	_, _ = store.Delete(ctx, inFlight.ID())
	must(t, inFlight.Set("late", json.RawMessage(`1`)))
	h = http.Header{}
	if _, err := manager.Save(ctx, inFlight, h); err != nil || h.Get("Set-Cookie") != "" {
		t.Errorf("a revoked session was saved: %v %q", err, h.Get("Set-Cookie"))
	}
	if _, outcome := manager.Open(requestWithCookie("session", aliceCookie)); outcome != OutcomeUnknownID {
		t.Errorf("a revoked session opens: %s", outcome)
	}
}

func TestSessionSizeIsBounded(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore(100, nil)
	codec, _ := NewSecureCookieCodec(testSecret)
	cfg := DefaultConfig()
	cfg.MaxSessionSize = 1000
	manager, _ := NewManager(cfg, codec, WithStore(store))
	s, _ := manager.Open(requestWithCookie("session", ""))
	must(t, s.Set("user", json.RawMessage(`"alice"`)))
	h := http.Header{}
	_, err := manager.Save(ctx, s, h)
	must(t, err)
	cookie := cookieValue(t, h, "session")

	grow, _ := manager.Open(requestWithCookie("session", cookie))
	must(t, grow.Set("blob", json.RawMessage(`"`+strings.Repeat("x", 1000)+`"`)))
	if _, err := manager.Save(ctx, grow, http.Header{}); !errors.Is(err, ErrSessionTooLarge) || !strings.Contains(err.Error(), "max_session_size") {
		t.Fatalf("a session over the bound: %v", err)
	}
	expectValues(t, store, s.ID(), `{"user":"alice"}`)

	// Already over a bound lowered since: removing keys is always allowed.
	_, err = store.Commit(ctx, s.ID(), Changes{Set: map[string]json.RawMessage{"blob": json.RawMessage(`"` + strings.Repeat("x", 1000) + `"`)}}, time.Hour)
	must(t, err)
	shrink, _ := manager.Open(requestWithCookie("session", cookie))
	must(t, shrink.Delete("blob"))
	if _, err := manager.Save(ctx, shrink, http.Header{}); err != nil {
		t.Errorf("removing a key from an oversized session: %v", err)
	}
	expectValues(t, store, s.ID(), `{"user":"alice"}`)
}
