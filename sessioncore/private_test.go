package sessioncore

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPrivateValues(t *testing.T) {
	ctx := context.Background()
	manager, store, save := storeManager(t)
	open := func(cookie string) *Session {
		t.Helper()
		s, outcome := manager.Open(requestWithCookie("session", cookie))
		if outcome != OutcomeValid {
			t.Fatalf("open: %s", outcome)
		}
		return s
	}

	s, _ := manager.Open(requestWithCookie("session", ""))
	must(t, s.Set("user", json.RawMessage(`"alice"`)))
	must(t, s.SetPrivate("oidc", json.RawMessage(`{"access_token": "a1"}`)))
	cookie := save(s)
	firstID := s.ID()

	// Stored beside the values, never among them.
	stored, _, _ := store.Load(ctx, firstID)
	if string(stored[PrivatePrefix+"oidc"]) != `{"access_token":"a1"}` {
		t.Fatalf("stored %q", stored)
	}
	s = open(cookie)
	if s.String() != `{"user":"alice"}` || s.Len() != 1 {
		t.Errorf("the private value shows among the values: %s", s)
	}
	if v, ok := s.Private("oidc"); !ok || string(v) != `{"access_token":"a1"}` {
		t.Errorf("private value %s %v", v, ok)
	}

	// A private change alone is saved, key by key.
	must(t, s.SetPrivate("oidc", json.RawMessage(`{"access_token":"a2"}`)))
	if !s.Modified() || !s.Accessed() {
		t.Error("a private change does not mark the session modified and accessed")
	}
	save(s)
	if v, _ := open(cookie).Private("oidc"); string(v) != `{"access_token":"a2"}` {
		t.Errorf("after a private change: %s", v)
	}

	// A replacement by an upstream keeps it; renewal carries it to the new
	// ID.
	s = open(cookie)
	m := new(Mutation)
	must(t, m.SetReplace([]byte(`{"user":"alice","cart":[1]}`)))
	m.SetRenew()
	must(t, s.Apply(m))
	cookie = save(s)
	if s.ID() == firstID {
		t.Fatal("not renewed")
	}
	if v, _ := open(cookie).Private("oidc"); string(v) != `{"access_token":"a2"}` {
		t.Errorf("after a replacement and renewal: %s", v)
	}

	// Removing it deletes its field only.
	s = open(cookie)
	must(t, s.SetPrivate("oidc", nil))
	save(s)
	if _, ok := open(cookie).Private("oidc"); ok {
		t.Error("a removed private value came back")
	}
	s = open(cookie)
	must(t, s.SetPrivate("oidc", json.RawMessage(`1`)))
	save(s)

	// Clearing the session takes the private values with it.
	s = open(cookie)
	must(t, s.Clear())
	save(s)
	if store.Len() != 0 {
		t.Errorf("a cleared session left %d stored", store.Len())
	}
}

func TestReservedKeys(t *testing.T) {
	for _, patch := range []string{`{"\u0000oidc":"x"}`, `{"a":1,"\u0000":null}`} {
		m := new(Mutation)
		if err := m.AddUpdate([]byte(patch)); !errors.Is(err, ErrReservedKey) {
			t.Errorf("update %s: %v", patch, err)
		}
		if err := m.SetReplace([]byte(patch)); !errors.Is(err, ErrReservedKey) {
			t.Errorf("replace %s: %v", patch, err)
		}
	}
	s := NewSession()
	if err := s.Set(PrivatePrefix+"oidc", json.RawMessage(`1`)); !errors.Is(err, ErrReservedKey) {
		t.Errorf("Set: %v", err)
	}
	must(t, s.Adopt(map[string]json.RawMessage{"a": json.RawMessage(`1`), PrivatePrefix + "x": json.RawMessage(`2`)}))
	if strings.Contains(s.String(), `\u0000`) || s.Len() != 1 {
		t.Errorf("Adopt kept a reserved key: %s", s)
	}
	if err := NewNullSession(nil).SetPrivate("x", json.RawMessage(`1`)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("null session: %v", err)
	}
}

// Requests that loaded a private value before another request saved a
// newer one never put the old one back: not by a replacement, not by a
// renewal, not by a save of their own changes.
func TestPrivateValuesAreNotUndone(t *testing.T) {
	ctx := context.Background()
	manager, store, s, cookie := aliceWithToken(t)
	var h http.Header
	var err error
	open := func() *Session {
		s, outcome := manager.Open(requestWithCookie("session", cookie))
		if outcome != OutcomeValid {
			t.Fatalf("open: %s", outcome)
		}
		return s
	}
	stored := func(id string) string {
		values, _, _ := store.Load(ctx, id)
		return string(values[PrivatePrefix+"oidc"])
	}

	slowReplace, slowRenew := open(), open()
	fast := open()
	must(t, manager.SavePrivate(ctx, fast, "oidc", json.RawMessage(`"t1"`)))
	if fast.Modified() || stored(fast.ID()) != `"t1"` {
		t.Fatalf("SavePrivate: modified=%v, stored %s", fast.Modified(), stored(fast.ID()))
	}

	m := new(Mutation)
	must(t, m.SetReplace([]byte(`{"user":"alice","cart":[]}`)))
	must(t, slowReplace.Apply(m))
	_, err = manager.Save(ctx, slowReplace, http.Header{})
	must(t, err)
	if got := stored(fast.ID()); got != `"t1"` {
		t.Errorf("a stale replacement put back %s", got)
	}

	must(t, slowRenew.Renew())
	h = http.Header{}
	_, err = manager.Save(ctx, slowRenew, h)
	must(t, err)
	if got := stored(slowRenew.ID()); got != `"t1"` {
		t.Errorf("a stale renewal carried %s to the new ID", got)
	}
	cookie = cookieValue(t, h, "session")

	// A session emptied key by key is over: its private values go, and so
	// does its cookie.
	s = open()
	must(t, s.Delete("user"))
	must(t, s.Delete("cart"))
	h = http.Header{}
	action, err := manager.Save(ctx, s, h)
	if err != nil || action != CookieDeleted || store.Len() != 0 {
		t.Errorf("emptied key by key: %s %v, %d stored", action, err, store.Len())
	}
}

// Neither a renewal nor SavePrivate brings back a session another request
// revoked or emptied meanwhile.
func TestNoRevivalOfADeletedSession(t *testing.T) {
	ctx := context.Background()
	manager, store, s, cookie := aliceWithToken(t)

	renewing, _ := manager.Open(requestWithCookie("session", cookie))
	refreshing, _ := manager.Open(requestWithCookie("session", cookie))
	if _, err := store.Delete(ctx, s.ID()); err != nil { // revoked meanwhile
		t.Fatal(err)
	}
	must(t, renewing.Renew())
	h := http.Header{}
	action, err := manager.Save(ctx, renewing, h)
	if err != nil || action != CookieUntouched || store.Len() != 0 || h.Get("Set-Cookie") != "" {
		t.Errorf("a renewal of a revoked session: %s %v, %d stored", action, err, store.Len())
	}
	if err := manager.SavePrivate(ctx, refreshing, "oidc", json.RawMessage(`"t1"`)); !errors.Is(err, ErrSessionGone) || store.Len() != 0 {
		t.Errorf("SavePrivate to a revoked session: %v, %d stored", err, store.Len())
	}
}

// laggingStore answers Load for one session from a copy, as a cache that
// has not yet heard of a change made elsewhere would; LoadFresh asks the
// store.
type laggingStore struct {
	Store
	id     string
	values map[string]json.RawMessage
}

func (l *laggingStore) Load(ctx context.Context, id string) (map[string]json.RawMessage, bool, error) {
	if id == l.id {
		return maps.Clone(l.values), true, nil
	}
	return l.Store.Load(ctx, id)
}

func (l *laggingStore) LoadFresh(ctx context.Context, id string) (map[string]json.RawMessage, bool, error) {
	return l.Store.Load(ctx, id)
}

// aliceBehindALaggingCache is aliceWithToken's session, with a manager
// whose store answers loads of it from a copy taken now (laggingStore).
func aliceBehindALaggingCache(t *testing.T) (*Manager, *mapStore, *Session, string) {
	t.Helper()
	_, store, s, cookie := aliceWithToken(t)
	values, _, _ := store.Load(context.Background(), s.ID())
	codec, _ := NewSecureCookieCodec(testSecret)
	manager, _ := NewManager(DefaultConfig(), codec, WithStore(&laggingStore{Store: store, id: s.ID(), values: values}))
	return manager, store, s, cookie
}

// A renewal asks the store itself whether the session still exists: a
// session revoked through another gateway, whose cache here has not heard
// of it yet, does not come back under a new ID.
func TestNoRevivalThroughALaggingCache(t *testing.T) {
	ctx := context.Background()
	manager, store, s, cookie := aliceBehindALaggingCache(t)

	renewing, _ := manager.Open(requestWithCookie("session", cookie))
	if v, _ := renewing.Text("user"); v != "alice" {
		t.Fatalf("the lagging copy did not open: %q", v)
	}
	if _, err := store.Delete(ctx, s.ID()); err != nil { // revoked elsewhere
		t.Fatal(err)
	}
	must(t, renewing.Renew())
	h := http.Header{}
	action, err := manager.Save(ctx, renewing, h)
	if err != nil || action != CookieUntouched || store.Len() != 0 || h.Get("Set-Cookie") != "" {
		t.Errorf("a renewal of a session revoked elsewhere: %s %v, %d stored", action, err, store.Len())
	}
}

// A renewal writes the session as the store holds it now, with the
// request's changes on top: a change made elsewhere meanwhile, which this
// request's lagging copy does not show, is not undone under the new ID.
func TestRenewalKeepsChangesMadeElsewhere(t *testing.T) {
	ctx := context.Background()
	manager, store, s, cookie := aliceBehindALaggingCache(t)

	renewing, _ := manager.Open(requestWithCookie("session", cookie))
	storetestCommit(t, store, s.ID(), Changes{Set: map[string]json.RawMessage{"role": json.RawMessage(`"user"`), "theme": json.RawMessage(`"dark"`)}})
	must(t, renewing.Set("cart", json.RawMessage(`[1]`)))
	must(t, renewing.Renew())
	h := http.Header{}
	if _, err := manager.Save(ctx, renewing, h); err != nil {
		t.Fatal(err)
	}
	renewed, found, _ := store.Load(ctx, renewing.ID())
	if !found || renewing.ID() == s.ID() {
		t.Fatalf("not renewed: %v %q", found, renewing.ID())
	}
	want := map[string]string{"user": `"alice"`, "role": `"user"`, "theme": `"dark"`, "cart": `[1]`, PrivatePrefix + "oidc": `"t0"`}
	if len(renewed) != len(want) {
		t.Errorf("renewed into %s", renewed)
	}
	for k, v := range want {
		if string(renewed[k]) != v {
			t.Errorf("renewed %s = %s, want %s", k, renewed[k], v)
		}
	}
}

// A renewal whose deletions, with another request's meanwhile, leave the
// session empty ends it: the old ID goes and the cookie is deleted, as a
// save without renewal would do, rather than the old ID staying alive.
func TestRenewalThatEmptiesTheSessionEndsIt(t *testing.T) {
	ctx := context.Background()
	manager, store, s, cookie := aliceWithToken(t)
	storetestCommit(t, store, s.ID(), Changes{Set: map[string]json.RawMessage{"role": json.RawMessage(`"admin"`)}})

	loggingOut, _ := manager.Open(requestWithCookie("session", cookie))
	storetestCommit(t, store, s.ID(), Changes{Deleted: []string{"role"}}) // another request, meanwhile
	must(t, loggingOut.Delete("user"))
	must(t, loggingOut.Renew())
	h := http.Header{}
	action, err := manager.Save(ctx, loggingOut, h)
	if err != nil || action != CookieDeleted || store.Len() != 0 {
		t.Errorf("a renewal that empties the session: %s %v, %d stored", action, err, store.Len())
	}
	if !strings.Contains(h.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("the cookie was not deleted: %q", h.Values("Set-Cookie"))
	}
}

// storetestCommit applies changes to the stored session id.
func storetestCommit(t *testing.T, store Store, id string, c Changes) {
	t.Helper()
	if exists, err := store.Commit(context.Background(), id, c, time.Hour); err != nil || !exists {
		t.Fatalf("commit: %v %v", exists, err)
	}
}

// aliceWithToken saves, with a store, a session of alice's that holds the
// private value oidc = "t0", and returns it and its cookie.
func aliceWithToken(t *testing.T) (*Manager, *mapStore, *Session, string) {
	t.Helper()
	manager, store, save := storeManager(t)
	s, _ := manager.Open(requestWithCookie("session", ""))
	must(t, s.Set("user", json.RawMessage(`"alice"`)))
	must(t, s.SetPrivate("oidc", json.RawMessage(`"t0"`)))
	cookie := save(s)
	if cookie == "" {
		t.Fatal("alice's session set no cookie")
	}
	return manager, store, s, cookie
}
