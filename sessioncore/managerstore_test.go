package sessioncore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// mapStore is the simplest store that keeps the Store contract, for the
// Manager's tests; the real stores live in packages of their own.
type mapStore struct {
	mu       sync.Mutex
	sessions map[string]map[string]json.RawMessage
}

func newMapStore() *mapStore { return &mapStore{sessions: map[string]map[string]json.RawMessage{}} }

func (m *mapStore) Load(_ context.Context, id string) (map[string]json.RawMessage, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	values, ok := m.sessions[id]
	return maps.Clone(values), ok, nil
}

func (m *mapStore) Commit(_ context.Context, id string, c Changes, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	values, ok := m.sessions[id]
	switch {
	case !ok && !c.Create:
		return false, nil
	case !ok:
		values = map[string]json.RawMessage{}
	case c.Clear:
		maps.DeleteFunc(values, func(k string, _ json.RawMessage) bool { return !reservedKey(k) })
	}
	maps.Copy(values, c.Set)
	for _, k := range c.Deleted {
		delete(values, k)
	}
	if len(values) == 0 {
		delete(m.sessions, id)
		return false, nil
	}
	m.sessions[id] = values
	return true, nil
}

func (m *mapStore) Delete(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.sessions[id]
	delete(m.sessions, id)
	return ok, nil
}

// Len returns how many sessions the store holds.
func (m *mapStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
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

// storeManager returns a manager with a map store and the test secret's
// secure-cookie codec, and save, which saves a session and returns the
// session cookie the response set ("" for none).
func storeManager(t *testing.T, options ...Option) (*Manager, *mapStore, func(*Session) string) {
	t.Helper()
	store := newMapStore()
	codec, _ := NewSecureCookieCodec(testSecret)
	manager, err := NewManager(DefaultConfig(), codec, append(options, WithStore(store))...)
	if err != nil {
		t.Fatal(err)
	}
	save := func(s *Session) string {
		t.Helper()
		h := http.Header{}
		if _, err := manager.Save(context.Background(), s, h); err != nil {
			t.Fatal(err)
		}
		if h.Get("Set-Cookie") == "" {
			return ""
		}
		return cookieValue(t, h, "session")
	}
	return manager, store, save
}

func TestManagerWithStore(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: testEpoch}
	codec, _ := NewSecureCookieCodec(testSecret)
	manager, store, save := storeManager(t, WithClock(clock.Now))

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
	store := newMapStore()
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
	memory := newMapStore()
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

func TestSessionSizeIsBounded(t *testing.T) {
	ctx := context.Background()
	store := newMapStore()
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

// A session ID never begins with '-', which a command line would read as
// a flag; without the redraw, one in 64 would.
func TestSessionIDsDoNotLookLikeFlags(t *testing.T) {
	for range 2000 {
		id, err := newSessionID()
		if err != nil || !ValidSessionID(id) || id[0] == '-' {
			t.Fatalf("%q, %v", id, err)
		}
	}
}
