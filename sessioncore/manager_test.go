package sessioncore

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unsafe"
)

var (
	testSecret      = []byte("0123456789abcdef0123456789abcdef-current")
	testOldSecret   = []byte("0123456789abcdef0123456789abcdef-previous")
	testAlienSecret = []byte("0123456789abcdef0123456789abcdef-unrelated")
	testEpoch       = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
)

// testClock is an injectable clock that only moves when told to.
type testClock struct{ t time.Time }

func (c *testClock) Now() time.Time          { return c.t }
func (c *testClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestManager(t *testing.T, cfg Config, clock *testClock, fallbacks ...[]byte) *Manager {
	t.Helper()
	codec, err := NewSecureCookieCodec(testSecret, fallbacks...)
	if err != nil {
		t.Fatal(err)
	}
	manager, err := NewManager(cfg, codec, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	return manager
}

// issue returns a cookie value for values, sealed by manager at the clock's time.
func issue(t *testing.T, manager *Manager, values string) string {
	t.Helper()
	s := NewSession()
	var m Mutation
	if err := m.SetReplace([]byte(values)); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(&m); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if _, err := manager.Save(context.Background(), s, h); err != nil {
		t.Fatal(err)
	}
	return cookieValue(t, h, manager.config.CookieName)
}

func cookieValue(t *testing.T, h http.Header, name string) string {
	t.Helper()
	lines := h.Values("Set-Cookie")
	if len(lines) != 1 {
		t.Fatalf("want one Set-Cookie, got %q", lines)
	}
	c, err := http.ParseSetCookie(lines[0])
	if err != nil || c.Name != name {
		t.Fatalf("bad Set-Cookie %q: %v", lines[0], err)
	}
	return c.Value
}

func requestWithCookie(name, value string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if value != "" {
		r.Header.Set("Cookie", name+"="+value)
	}
	return r
}

func TestOpen(t *testing.T) {
	clock := &testClock{t: testEpoch}
	cfg := DefaultConfig()
	manager := newTestManager(t, cfg, clock, testOldSecret)
	valid := issue(t, manager, `{"user":"alice"}`)
	permanent := issue(t, manager, `{"user":"alice","_permanent":true}`)

	oldIface := newTestManager(t, cfg, clock)
	oldIface.codec, _ = NewSecureCookieCodec(testOldSecret)
	byFallback := issue(t, oldIface, `{"user":"bob"}`)
	alienIface := newTestManager(t, cfg, clock)
	alienIface.codec, _ = NewSecureCookieCodec(testAlienSecret)
	byAlien := issue(t, alienIface, `{"user":"mallory"}`)

	otherName := cfg
	otherName.CookieName = "other"
	renamed := issue(t, newTestManager(t, otherName, clock), `{"user":"alice"}`)

	tests := []struct {
		name    string
		value   string
		advance time.Duration
		outcome Outcome
		want    string
	}{
		{"no cookie", "", 0, OutcomeNew, `{}`},
		{"valid", valid, 0, OutcomeValid, `{"user":"alice"}`},
		{"valid at exactly the lifetime", valid, DefaultLifetime, OutcomeValid, `{"user":"alice"}`},
		{"non-permanent older than the lifetime", valid, DefaultLifetime + time.Second, OutcomeExpired, `{}`},
		{"permanent older than the lifetime", permanent, DefaultLifetime + time.Second, OutcomeExpired, `{}`},
		{"issued within the clock skew", valid, -MaxClockSkew, OutcomeValid, `{"user":"alice"}`},
		{"issued in the future", valid, -MaxClockSkew - time.Second, OutcomeExpired, `{}`},
		{"fallback key", byFallback, 0, OutcomeFallbackKey, `{"user":"bob"}`},
		{"unknown key", byAlien, 0, OutcomeBadSignature, `{}`},
		{"signed for another cookie name", renamed, 0, OutcomeBadSignature, `{}`},
		{"tampered", valid[:len(valid)-4] + "AAAA", 0, OutcomeBadSignature, `{}`},
		{"truncated", valid[:len(valid)/2], 0, OutcomeBadSignature, `{}`},
		{"garbage", "not-a-cookie", 0, OutcomeBadSignature, `{}`},
		{"oversized", strings.Repeat("A", MaxCookieSize+1), 0, OutcomeTooLarge, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.t = testEpoch.Add(tt.advance)
			s, outcome := manager.Open(requestWithCookie(cfg.CookieName, tt.value))
			if outcome != tt.outcome {
				t.Errorf("outcome = %s, want %s", outcome, tt.outcome)
			}
			if got := s.String(); got != tt.want {
				t.Errorf("session = %s, want %s", got, tt.want)
			}
			if s.Modified() || s.Accessed() {
				t.Errorf("a freshly opened session must be neither modified nor accessed")
			}
			if s.IsNull() {
				t.Errorf("got a null session")
			}
			if wantNew := tt.want == `{}`; s.IsNew() != wantNew {
				t.Errorf("IsNew = %v, want %v", s.IsNew(), wantNew)
			}
		})
	}
}

func TestOpenUsesFirstCookieOfTheName(t *testing.T) {
	clock := &testClock{t: testEpoch}
	manager := newTestManager(t, DefaultConfig(), clock)
	valid := issue(t, manager, `{"user":"alice"}`)

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", "session="+valid+"; session=bogus")
	if s, _ := manager.Open(r); s.String() != `{"user":"alice"}` {
		t.Errorf("valid first: got %s", s)
	}
	r.Header.Set("Cookie", "session=bogus; session="+valid)
	if s, outcome := manager.Open(r); s.Len() != 0 || outcome != OutcomeBadSignature {
		t.Errorf("bogus first: got %s (%s)", s, outcome)
	}
}

func TestOpenUndecodablePayload(t *testing.T) {
	clock := &testClock{t: testEpoch}
	manager := newTestManager(t, DefaultConfig(), clock)
	for _, payload := range []string{`not json`, `"a string"`, `[1,2]`, strings.Repeat("[", 40) + strings.Repeat("]", 40)} {
		value, err := manager.codec.Encode("session", Payload{JSON: []byte(payload), Issued: clock.t})
		if err != nil {
			t.Fatal(err)
		}
		s, outcome := manager.Open(requestWithCookie("session", value))
		if outcome != OutcomeUndecodable || s.Len() != 0 || s.IsNull() {
			t.Errorf("%s: got %s (%s), want a fresh session", payload, s, outcome)
		}
	}
}

func TestOpenWithoutCodecGivesNullSession(t *testing.T) {
	manager, err := NewManager(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, outcome := manager.Open(requestWithCookie("session", "anything"))
	if !s.IsNull() || outcome != OutcomeUnavailable {
		t.Fatalf("want a null session, got %v (%s)", s, outcome)
	}
	h := http.Header{}
	s.MarkAccessed()
	if action, err := manager.Save(context.Background(), s, h); err != nil || action != CookieUntouched || len(h) != 0 {
		t.Errorf("a null session must never be saved: %s %v %v", action, err, h)
	}
}

func TestNullSessionRefusesEveryChange(t *testing.T) {
	s := NewNullSession(errors.New("the store is down"))
	var m Mutation
	_ = m.AddUpdate([]byte(`{"a":1}`))
	changes := map[string]func() error{
		"Set":          func() error { return s.Set("a", json.RawMessage(`1`)) },
		"Delete":       func() error { return s.Delete("a") },
		"Clear":        s.Clear,
		"SetPermanent": func() error { return s.SetPermanent(true) },
		"Apply":        func() error { return s.Apply(&m) },
	}
	for name, change := range changes {
		err := change()
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "the store is down") {
			t.Errorf("%s: err = %v, want ErrUnavailable saying why", name, err)
		}
	}
	if s.Len() != 0 || s.String() != "{}" || s.Modified() {
		t.Errorf("a null session reads as empty and unmodified, got %s", s)
	}
	if _, ok := s.Get("a"); ok {
		t.Error("Get on a null session found a key")
	}
}

func TestSave(t *testing.T) {
	type step func(s *Session)
	set := func(k, v string) step { return func(s *Session) { _ = s.Set(k, json.RawMessage(v)) } }
	del := func(k string) step { return func(s *Session) { _ = s.Delete(k) } }
	access := func(s *Session) { s.MarkAccessed() }
	clearAll := func(s *Session) { _ = s.Clear() }

	tests := []struct {
		name      string
		initial   string // "" for no cookie
		refresh   bool
		steps     []step
		action    CookieAction
		vary      bool
		permanent bool // the cookie carries an expiry
	}{
		{"untouched, no cookie", "", true, nil, CookieUntouched, false, false},
		{"untouched, non-permanent cookie", `{"a":1}`, true, nil, CookieUntouched, false, false},
		{"read only", `{"a":1}`, true, []step{access}, CookieUntouched, true, false},
		{"write", `{"a":1}`, true, []step{set("b", "2")}, CookieSet, true, false},
		{"write of the same value", `{"a":1}`, true, []step{set("a", "1")}, CookieSet, true, false},
		{"delete of a missing key", `{"a":1}`, true, []step{del("zz")}, CookieUntouched, false, false},
		{"permanent untouched, refresh on", `{"_permanent":true,"a":1}`, true, nil, CookieSet, true, true},
		{"permanent untouched, refresh off", `{"_permanent":true,"a":1}`, false, nil, CookieUntouched, false, false},
		{"permanent modified, refresh off", `{"_permanent":true,"a":1}`, false, []step{set("b", "2")}, CookieSet, true, true},
		{"permanent as Python truthiness", `{"_permanent":1,"a":1}`, true, nil, CookieSet, true, true},
		{"_permanent false", `{"_permanent":false,"a":1}`, true, nil, CookieUntouched, false, false},
		{"clear deletes the cookie", `{"a":1}`, true, []step{clearAll}, CookieDeleted, true, false},
		{"deleting the last key deletes the cookie", `{"a":1}`, true, []step{del("a")}, CookieDeleted, true, false},
		{"clearing an empty session still deletes", "", true, []step{clearAll}, CookieDeleted, true, false},
		{"empty and unmodified: nothing", "", true, []step{access}, CookieUntouched, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &testClock{t: testEpoch}
			cfg := DefaultConfig()
			cfg.RefreshEachRequest = tt.refresh
			manager := newTestManager(t, cfg, clock)
			r := requestWithCookie("session", "")
			if tt.initial != "" {
				r = requestWithCookie("session", issue(t, manager, tt.initial))
			}
			clock.Advance(time.Hour)
			s, _ := manager.Open(r)
			for _, st := range tt.steps {
				st(s)
			}
			h := http.Header{}
			action, err := manager.Save(context.Background(), s, h)
			if err != nil {
				t.Fatal(err)
			}
			if action != tt.action {
				t.Errorf("action = %s, want %s", action, tt.action)
			}
			if got := h.Get("Vary") == "Cookie"; got != tt.vary {
				t.Errorf("Vary: Cookie = %v, want %v (%q)", got, tt.vary, h.Values("Vary"))
			}
			lines := h.Values("Set-Cookie")
			if tt.action == CookieUntouched {
				if len(lines) != 0 {
					t.Errorf("want no Set-Cookie, got %q", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("want one Set-Cookie, got %q", lines)
			}
			line := lines[0]
			switch {
			case tt.action == CookieDeleted:
				if want := "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/"; line != want {
					t.Errorf("deletion = %q, want %q", line, want)
				}
			case tt.permanent:
				expires := clock.t.Add(DefaultLifetime).Format(http.TimeFormat)
				if !strings.Contains(line, "; Expires="+expires+"; Max-Age=2678400; HttpOnly; Path=/") {
					t.Errorf("permanent cookie %q lacks Expires %s and Max-Age", line, expires)
				}
			default:
				if strings.Contains(line, "Expires") || strings.Contains(line, "Max-Age") {
					t.Errorf("browser-session cookie %q has an expiry", line)
				}
			}
		})
	}
}

func TestSaveReissuesWithNewTimestampAndCurrentKey(t *testing.T) {
	clock := &testClock{t: testEpoch}
	cfg := DefaultConfig()
	current := newTestManager(t, cfg, clock, testOldSecret)
	old := newTestManager(t, cfg, clock)
	old.codec, _ = NewSecureCookieCodec(testOldSecret)
	value := issue(t, old, `{"_permanent":true,"user":"bob"}`)

	clock.Advance(DefaultLifetime - time.Minute)
	reissued := openAndSave(t, current, value, OutcomeFallbackKey)

	// The reissued cookie opens with the current key alone, and lives a
	// whole lifetime from now: a sliding expiry.
	clock.Advance(DefaultLifetime - time.Minute)
	onlyCurrent := newTestManager(t, cfg, clock)
	s, outcome := onlyCurrent.Open(requestWithCookie("session", reissued))
	if outcome != OutcomeValid || s.String() != `{"_permanent":true,"user":"bob"}` {
		t.Errorf("reissued cookie: %s (%s)", s, outcome)
	}
	if !s.Created().Equal(testEpoch) {
		t.Errorf("created = %s, want it kept from the first issue (%s)", s.Created(), testEpoch)
	}
}

// An unchanged session is reissued over the sealed value it came with;
// a change or a renewal seals it again.
func TestSaveReusesSealedValueOnlyWhileUnchanged(t *testing.T) {
	flask, _ := NewFlaskCodec(testSecret)
	secure, _ := NewSecureCookieCodec(testSecret)
	for _, codec := range []Codec{secure, flask} {
		t.Run(fmt.Sprintf("%T", codec), func(t *testing.T) {
			clock := &testClock{t: testEpoch}
			manager, err := NewManager(DefaultConfig(), codec, WithClock(clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			first := issue(t, manager, `{"_permanent":true,"user":"alice"}`)
			sealedOf := func(value string) string {
				t.Helper()
				p, _, err := codec.Decode("session", value)
				if err != nil {
					t.Fatal(err)
				}
				return string(p.Sealed)
			}
			reissue := func(change func(*Session)) (string, *Session) {
				t.Helper()
				clock.Advance(time.Minute)
				s, outcome := manager.Open(requestWithCookie("session", first))
				if outcome != OutcomeValid {
					t.Fatalf("outcome %s", outcome)
				}
				change(s)
				h := http.Header{}
				if _, err := manager.Save(context.Background(), s, h); err != nil {
					t.Fatal(err)
				}
				value := cookieValue(t, h, "session")
				reopened, _ := manager.Open(requestWithCookie("session", value))
				return value, reopened
			}

			refreshed, s := reissue(func(*Session) {})
			if refreshed == first || sealedOf(refreshed) != sealedOf(first) {
				t.Error("a refresh did not reuse the sealed value")
			}
			if s.String() != `{"_permanent":true,"user":"alice"}` || !s.issued.Equal(clock.Now()) {
				t.Errorf("refreshed session %s issued %s", s, s.issued)
			}

			changed, s := reissue(func(s *Session) { _ = s.Set("user", json.RawMessage(`"bob"`)) })
			if sealedOf(changed) == sealedOf(first) || s.String() != `{"_permanent":true,"user":"bob"}` {
				t.Errorf("a change kept the old sealed value: %s", s)
			}

			_, s = reissue(func(s *Session) { _ = s.Renew() })
			if _, isFlask := codec.(*FlaskCodec); isFlask {
				return // Flask's cookie has no creation time
			}
			if !s.Created().Equal(clock.Now()) || s.String() != `{"_permanent":true,"user":"alice"}` {
				t.Errorf("a renewal kept the creation time %s: %s", s.Created(), s)
			}
		})
	}
}

func TestSaveRefusesOversizedCookie(t *testing.T) {
	clock := &testClock{t: testEpoch}
	cfg := DefaultConfig()
	cfg.MaxCookieParts = 1
	manager := newTestManager(t, cfg, clock)
	s := NewSession()
	if err := s.Set("blob", json.RawMessage(`"`+strings.Repeat("x", 3000)+`"`)); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	action, err := manager.Save(context.Background(), s, h)
	if !errors.Is(err, ErrCookieTooLarge) || action != CookieUntouched {
		t.Fatalf("Save = %s, %v; want ErrCookieTooLarge", action, err)
	}
	if len(h) != 0 {
		t.Errorf("a refused save must write nothing, wrote %v", h)
	}
}

func TestCookieAttributes(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		set     string // the attributes after the value of a non-permanent cookie
		deleted string
	}{
		{"flask defaults", func(*Config) {}, "; HttpOnly; Path=/", "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/"},
		{"every attribute", func(c *Config) {
			c.CookieName, c.CookieDomain, c.CookiePath = "sid", ".Example.COM:8443", "/app"
			c.CookieSecure, c.CookieSameSite, c.CookiePartitioned = true, "lax", true
		}, "; Domain=example.com; Secure; HttpOnly; Path=/app; SameSite=Lax; Partitioned",
			"sid=; Domain=example.com; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; HttpOnly; Path=/app; SameSite=Lax; Partitioned"},
		{"partitioned forces Secure", func(c *Config) { c.CookiePartitioned = true; c.CookieHTTPOnly = false },
			"; Secure; Path=/; Partitioned", "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; Path=/; Partitioned"},
		{"strict, path quoted", func(c *Config) { c.CookieSameSite = "STRICT"; c.CookiePath = "/a b;c" },
			"; HttpOnly; Path=/a%20b%3Bc; SameSite=Strict", "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/a%20b%3Bc; SameSite=Strict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(&cfg)
			clock := &testClock{t: testEpoch}
			manager := newTestManager(t, cfg, clock)

			s := NewSession()
			_ = s.Set("a", json.RawMessage(`1`))
			h := http.Header{}
			if _, err := manager.Save(context.Background(), s, h); err != nil {
				t.Fatal(err)
			}
			line := h.Get("Set-Cookie")
			if _, attrs, _ := strings.Cut(line, ";"); "; "+strings.TrimPrefix(attrs, " ") != tt.set {
				t.Errorf("set line %q, want attributes %q", line, tt.set)
			}
			_ = s.Clear()
			h = http.Header{}
			if _, err := manager.Save(context.Background(), s, h); err != nil {
				t.Fatal(err)
			}
			if got := h.Get("Set-Cookie"); got != tt.deleted {
				t.Errorf("deletion %q, want %q", got, tt.deleted)
			}
		})
	}
}

func TestNewManagerRejectsBadConfig(t *testing.T) {
	codec, _ := NewSecureCookieCodec(testSecret)
	bad := map[string]func(*Config){
		"empty name":   func(c *Config) { c.CookieName = "" },
		"name with ;":  func(c *Config) { c.CookieName = "a;b" },
		"zero life":    func(c *Config) { c.Lifetime = 0 },
		"bad samesite": func(c *Config) { c.CookieSameSite = "sometimes" },
	}
	for name, change := range bad {
		cfg := DefaultConfig()
		change(&cfg)
		if _, err := NewManager(cfg, codec); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSecureCookieCodecRejectsShortSecrets(t *testing.T) {
	if _, err := NewSecureCookieCodec([]byte("short")); err == nil {
		t.Error("short secret accepted")
	} else if strings.Contains(err.Error(), "short") {
		t.Errorf("error %q reveals the secret", err)
	}
	if _, err := NewSecureCookieCodec(testSecret, []byte("tiny-fallback")); err == nil || !strings.Contains(err.Error(), "fallback secret 1") {
		t.Errorf("short fallback: err = %v", err)
	}
}

func TestAddVaryCookie(t *testing.T) {
	tests := []struct {
		before []string
		after  []string
	}{
		{nil, []string{"Cookie"}},
		{[]string{"Cookie"}, []string{"Cookie"}},
		{[]string{"cookie"}, []string{"cookie"}},
		{[]string{"Accept-Encoding, Accept-Language"}, []string{"Accept-Encoding, Accept-Language, Cookie"}},
		{[]string{"Accept", "Origin"}, []string{"Accept", "Origin, Cookie"}},
		{[]string{"Origin, Cookie", "Accept"}, []string{"Origin, Cookie", "Accept"}},
		{[]string{"*"}, []string{"*"}},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.before {
			h.Add("Vary", v)
		}
		AddVaryCookie(h)
		if got := h.Values("Vary"); strings.Join(got, "|") != strings.Join(tt.after, "|") {
			t.Errorf("Vary %q -> %q, want %q", tt.before, got, tt.after)
		}
	}
}

// withRememberingAndAfresh runs f for each codec with two Managers on
// one clock: one that remembers the values it opens, one that opens every
// value afresh.
func withRememberingAndAfresh(t *testing.T, f func(t *testing.T, clock *testClock, remembering, afresh *Manager)) {
	flask, _ := NewFlaskCodec(testSecret)
	secure, _ := NewSecureCookieCodec(testSecret)
	for _, codec := range []Codec{secure, flask} {
		t.Run(fmt.Sprintf("%T", codec), func(t *testing.T) {
			clock := &testClock{t: testEpoch}
			remembering, _ := NewManager(DefaultConfig(), codec, WithClock(clock.Now))
			afresh, _ := NewManager(DefaultConfig(), codec, WithClock(clock.Now), withoutOpenCache())
			f(t, clock, remembering, afresh)
		})
	}
}

// A remembered value opens exactly as it did the first time, and the time
// checks run again: it expires like any other.
func TestRememberedValuesOpenAsTheFirstTime(t *testing.T) {
	withRememberingAndAfresh(t, func(t *testing.T, clock *testClock, remembering, afresh *Manager) {
		same := func(value string) {
			t.Helper()
			for range 2 { // a miss, then a hit
				a, ao := remembering.Open(requestWithCookie("session", value))
				b, bo := afresh.Open(requestWithCookie("session", value))
				if ao != bo || a.String() != b.String() || !a.issued.Equal(b.issued) || !a.Created().Equal(b.Created()) ||
					a.Permanent() != b.Permanent() || string(a.sealed) != string(b.sealed) {
					t.Fatalf("remembered %s %s issued %s, afresh %s %s issued %s", ao, a, a.issued, bo, b, b.issued)
				}
			}
		}
		first := issue(t, remembering, `{"_permanent":true,"user":"alice","n":[1,2]}`)
		same(first)

		// The reissued value of an unchanged session is remembered
		// as it would open.
		clock.Advance(time.Minute)
		refreshed := openAndSave(t, remembering, first, OutcomeValid)
		if _, known := remembering.cache.get(refreshed); !known {
			t.Error("the reissued value is not remembered")
		}
		same(refreshed)

		// A remembered session changed by one request is not changed
		// for the next.
		s, _ := remembering.Open(requestWithCookie("session", refreshed))
		_ = s.Set("user", json.RawMessage(`"mallory"`))
		same(refreshed)

		clock.Advance(DefaultLifetime + time.Second)
		if _, outcome := remembering.Open(requestWithCookie("session", refreshed)); outcome != OutcomeExpired {
			t.Errorf("a remembered value past its lifetime opened: %s", outcome)
		}
		same(refreshed)
	})
}

// What is remembered owns its bytes: a value opened from a request's
// Cookie line is still remembered, and reissued right, once the memory of
// that line is reused.
func TestRememberedValuesOwnTheirBytes(t *testing.T) {
	withRememberingAndAfresh(t, func(t *testing.T, clock *testClock, remembering, afresh *Manager) {
		value := issue(t, remembering, `{"_permanent":true,"user":"alice"}`)
		remembering.cache.entries.Purge()

		line := []byte("theme=dark; session=" + value)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Cookie"] = []string{unsafe.String(&line[0], len(line))}
		if _, outcome := remembering.Open(r); outcome != OutcomeValid {
			t.Fatalf("outcome %s", outcome)
		}
		for i := range line {
			line[i] = 'x' // the request is over; its memory is reused
		}
		if _, known := remembering.cache.get(value); !known {
			t.Fatal("the value is no longer remembered")
		}

		clock.Advance(time.Minute)
		checkReissuedAlike(t, remembering, afresh, value)
	})
}

// A Flask value just too large to be remembered (its timestamp in 8 bytes,
// as only a key holder writes it) is opened without a copy. Its reissue is
// 5 bytes shorter, short enough to be remembered, but its payload is still
// a slice of the request's Cookie line: it is not remembered.
func TestAValueTooLargeToRememberDoesNotLeaveItsBytesInMemory(t *testing.T) {
	flask, _ := NewFlaskCodec(testSecret)
	clock := &testClock{t: testEpoch}
	manager, _ := NewManager(DefaultConfig(), flask, WithClock(clock.Now))
	afresh, _ := NewManager(DefaultConfig(), flask, WithClock(clock.Now), withoutOpenCache())
	var value string
	for n := 1400; ; n++ {
		// a payload that barely compresses, one character longer each time
		var sb strings.Builder
		sb.WriteString(`{"_permanent":true,"k":"`)
		x := uint32(12345)
		for i := 0; i < n; i++ {
			x = x*1664525 + 1013904223
			sb.WriteByte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(x>>8)%62])
		}
		sb.WriteString(`"}`)
		payload := flaskPayload([]byte(sb.String()))
		var ts [8]byte
		binary.BigEndian.PutUint64(ts[:], uint64(clock.Now().Unix()))
		out := append([]byte{}, payload...)
		out = append(out, '.')
		out = b64.AppendEncode(out, ts[:])
		var sum [sha1.Size]byte
		sig := flask.sign(flask.keys[0], out, sum[:])
		out = append(out, '.')
		out = b64.AppendEncode(out, sig)
		if len(out) > maxCachedValue && len(out)-5 <= maxCachedValue {
			value = string(out)
			break
		}
		if len(out) > maxCachedValue+5 {
			t.Fatal("no payload size gives a value just over maxCachedValue")
		}
	}
	clock.Advance(time.Minute)
	line := []byte("session=" + value)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header["Cookie"] = []string{unsafe.String(&line[0], len(line))}
	s, outcome := manager.Open(r)
	if outcome != OutcomeValid {
		t.Fatal(outcome)
	}
	h := http.Header{}
	if _, err := manager.Save(context.Background(), s, h); err != nil {
		t.Fatal(err)
	}
	reissued := cookieValue(t, h, "session")
	if len(reissued) > maxCachedValue {
		t.Fatalf("the reissued value has %d bytes, too many to test anything", len(reissued))
	}
	for i := range line {
		line[i] = 'x' // the request's memory is reused
	}
	clock.Advance(time.Minute)
	checkReissuedAlike(t, manager, afresh, reissued)
}

// openAndSave opens value with manager, expecting outcome, saves the session
// unchanged and returns the cookie value the response carries.
func openAndSave(t *testing.T, manager *Manager, value string, outcome Outcome) string {
	t.Helper()
	s, got := manager.Open(requestWithCookie("session", value))
	if got != outcome {
		t.Fatalf("outcome = %s, want %s", got, outcome)
	}
	h := http.Header{}
	if _, err := manager.Save(context.Background(), s, h); err != nil {
		t.Fatal(err)
	}
	return cookieValue(t, h, "session")
}

// checkReissuedAlike checks that value, opened and saved unchanged,
// reissues the same from remembering's memory as afresh, and that the
// reissued value opens.
func checkReissuedAlike(t *testing.T, remembering, afresh *Manager, value string) {
	t.Helper()
	got, want := openAndSave(t, remembering, value, OutcomeValid), openAndSave(t, afresh, value, OutcomeValid)
	if got != want {
		t.Errorf("reissued from memory:\n%.60q...\nafresh:\n%.60q...", got, want)
	}
	if _, outcome := afresh.Open(requestWithCookie("session", got)); outcome != OutcomeValid {
		t.Errorf("the value reissued from memory opens as %s", outcome)
	}
}
