package sessioncore

// Fuzz targets for everything the gateway parses from the outside: cookie
// values (both codecs), cookie parts, mutation headers and merge patches.
// `go test` runs their seed corpora (the f.Add calls and testdata/fuzz/);
// fuzz one for longer with, for example:
//
//	go test ./sessioncore -run '^$' -fuzz '^FuzzSecureCookieOpen$' -fuzztime 5m

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// checkHeaderSafe fails when the session would not make a valid, plain
// ASCII X-Session header of one JSON object.
func checkHeaderSafe(t *testing.T, s *Session) {
	t.Helper()
	out := s.AppendJSON(nil)
	if !isPrintableASCII(out) || !json.Valid(out) || out[0] != '{' {
		t.Fatalf("session JSON unfit for a header: %q", out)
	}
}

func openWith(t *testing.T, manager *Manager, cookieHeader string) *Session {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", cookieHeader)
	s, _ := manager.Open(r)
	return s
}

func FuzzSecureCookieOpen(f *testing.F) {
	codec, _ := NewSecureCookieCodec(testSecret)
	now := time.Unix(1_800_000_000, 0)
	manager, _ := NewManager(DefaultConfig(), codec, WithClock(func() time.Time { return now }))
	for _, json := range []string{`{"user":"alice"}`, `{}`, `{"a":[1,{"b":null}]}`, `not json`, `{"a":1,"a":2}`, `{"\u00e9":"x"}`} {
		v, _ := codec.Encode("session", Payload{JSON: []byte(json), Issued: now})
		f.Add(v)
	}
	f.Add("")
	f.Add("MTc5NTYzNDk2Nnw2cGRu")
	f.Add("3!abc")
	f.Fuzz(func(t *testing.T, value string) {
		if p, _, err := codec.Decode("session", value); err == nil && p.Normalized {
			// What the check lets through must split later: sessions
			// are split lazily on that promise.
			if _, err := checkNormalizedObject(p.JSON); err == nil {
				if _, err := splitObject(p.JSON); err != nil {
					t.Fatalf("%q passed the check but does not split: %v", p.JSON, err)
				}
			}
		}
		checkHeaderSafe(t, openWith(t, manager, "session="+value))
	})
}

func FuzzFlaskOpen(f *testing.F) {
	codec, _ := NewFlaskCodec([]byte("dev-secret-for-vectors"))
	now := time.Unix(1_700_000_000, 0)
	cfg := DefaultConfig()
	manager, _ := NewManager(cfg, codec, WithClock(func() time.Time { return now }))
	f.Add("eyJuYW1lIjoiYWxpY2UiLCJ1c2VyX2lkIjo0Mn0.ZVPxAA.sHMUbKL8wPAmCQ09046XNQBtb-E")
	for _, json := range []string{`{"t":{" t":[1,2]}}`, `{" di":{" t__":1}}`, `{"d":{" d":"Tue, 02 Jan 2024 03:04:05 GMT"}}`, `{"k":"` + strings.Repeat("a", 300) + `"}`, `[1]`} {
		v, _ := codec.Encode("session", Payload{JSON: []byte(json), Issued: now})
		f.Add(v)
	}
	f.Add(".eJyrVkrLz1eyUkpKLFKqBQAeqgRr.ZVPxAA.x")
	f.Fuzz(func(t *testing.T, value string) {
		_, _, _ = codec.Decode("session", value)
		s := openWith(t, manager, "session="+value)
		checkHeaderSafe(t, s)
		// What opens must save again.
		_ = s.SetPermanent(true)
		if _, err := manager.Save(t.Context(), s, http.Header{}); err != nil && !strings.Contains(err.Error(), "too large") {
			t.Fatalf("save after open: %v", err)
		}
	})
}

func FuzzCookieParts(f *testing.F) {
	codec, _ := NewSecureCookieCodec(testSecret)
	manager, _ := NewManager(DefaultConfig(), codec)
	f.Add("session=2!abc; session.1=def")
	f.Add("session=3!a; session.2=c; session.1=b; session.1=x")
	f.Add("session=99!a; session.01=b; session.-1=c; session.999=d")
	f.Add(`session="2!a"; session.1="b"`)
	f.Fuzz(func(t *testing.T, header string) {
		rc := readCookies(http.Header{"Cookie": {header}}, "session")
		_, _ = rc.value(DefaultMaxCookieParts)
		if rc.partsSeen > maxPartIndex {
			t.Fatalf("part %d read", rc.partsSeen)
		}
		checkHeaderSafe(t, openWith(t, manager, header))
	})
}

func FuzzMergePatch(f *testing.F) {
	f.Add(`{"a":1,"b":{"c":2}}`, `{"b":{"c":null,"d":[1]},"e":"x"}`)
	f.Add(`{}`, `{"a":{"b":{"c":{"d":null}}}}`)
	f.Add(`{"a":[1,2]}`, `{"a":{"0":1}}`)
	f.Add(`{"\u00e9":"\ud83d\ude00"}`, `{"\u00e9":null}`)
	f.Fuzz(func(t *testing.T, target, patch string) {
		s := NewSession()
		var replace, update Mutation
		if replace.SetReplace([]byte(target)) != nil || update.AddUpdate([]byte(patch)) != nil {
			return
		}
		if err := s.Apply(&replace); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(&update); err != nil {
			t.Fatal(err)
		}
		checkHeaderSafe(t, s)
		// A merge patch is idempotent (RFC 7386).
		once := s.String()
		if err := s.Apply(&update); err != nil {
			t.Fatal(err)
		}
		if twice := s.String(); twice != once {
			t.Fatalf("patching twice: %s, then %s", once, twice)
		}
	})
}

func FuzzMutationHeaders(f *testing.F) {
	f.Add("X-Session-Update", `{"a":1}`, "X_Session_Replace", `{}`)
	f.Add("x-session-renew", "TRUE", "X-Session-Update", `[`)
	f.Add("X.Session.Update", `{"a":`+strings.Repeat("[", 40)+`}`, "X-Session-Foo", "bar")
	f.Add("X-Session-Update", "{\"a\":\"\x00\"}", "X-Session-Update", `{"a":null}`)
	p, _ := newHeaderProtocol(DefaultHeaderPrefix)
	f.Fuzz(func(t *testing.T, name1, value1, name2, value2 string) {
		h := http.Header{name1: {value1}, name2: {value2}, "Content-Type": {"text/plain"}}
		m, err := p.TakeMutation(h)
		for name := range h {
			if p.Owns(name) {
				t.Fatalf("%s left in the response", name)
			}
		}
		if err != nil {
			return
		}
		s := NewSession()
		if err := s.Apply(m); err != nil {
			t.Fatal(err)
		}
		checkHeaderSafe(t, s)
	})
}

// FuzzCheckNormalizedObject holds the promise lazy splitting rests on:
// JSON that passes the check when a session is opened splits later, and
// the _permanent value the check reports is the one the split gives.
func FuzzCheckNormalizedObject(f *testing.F) {
	for _, seed := range []string{`{}`, `{"_permanent":true,"user":"alice"}`, `{"a":1,"_permanent":0,"_permanent":1}`,
		`{"a":[1,{"b":"}"}]}`, `{"\u00e9":1}`, `{"a":1,}`, `{"a"}`, `{"a":"\"}`, `{"\ud800":1}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		permanent, err := checkNormalizedObject(b)
		if err != nil {
			return
		}
		members, err := splitObject(b)
		if err != nil {
			t.Fatalf("%q passed the check but does not split: %v", b, err)
		}
		if string(members[PermanentKey]) != string(permanent) {
			t.Fatalf("%q: check saw _permanent %q, split %q", b, permanent, members[PermanentKey])
		}
	})
}

// FuzzValidStoredValue: the check of values read from Redis accepts only
// what json.Valid accepts, compact printable ASCII, its fast path for
// plain strings included.
func FuzzValidStoredValue(f *testing.F) {
	for _, seed := range []string{`"alice"`, `""`, `"`, `"a"b"`, `"\q"`, `"\u00e9"`, `1`, `{"a":[1]}`, `"a b"`, "\"a\tb\"", `"é"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if ValidStoredValue(b) && !json.Valid(b) {
			t.Fatalf("%q passed, but is not JSON", b)
		}
		if ValidStoredValue(b) && !isCompactASCII(b) {
			t.Fatalf("%q passed, but is not compact printable ASCII", b)
		}
	})
}

// isCompactASCII reports whether b is printable ASCII with spaces only
// inside strings, the slow way.
func isCompactASCII(b []byte) bool {
	inString, escaped := false, false
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == ' ' && !inString {
			return false
		}
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = inString
		case c == '"':
			inString = !inString
		}
	}
	return true
}

// FuzzLookupMember: looking one key up in a normalized session, without
// splitting it, finds what splitting it finds, for every key.
func FuzzLookupMember(f *testing.F) {
	f.Add([]byte(`{"a":"x\"y\\","b\"":[1,{"c":"}"}],"user":"u"}`))
	f.Add([]byte(`{"pad":"\\\\\\"","k":"\\\\"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		normalized, err := normalizeJSON(raw)
		if err != nil || len(normalized) == 0 || normalized[0] != '{' {
			return
		}
		members, err := splitObject(normalized)
		if err != nil {
			return // a key that is not valid Unicode: such a session never opens
		}
		for k, want := range members {
			got, ok := lookupMember(normalized, k)
			if !ok || string(got) != string(want) {
				t.Fatalf("lookup %q in %s: %s %v, want %s", k, normalized, got, ok, want)
			}
		}
		if _, ok := lookupMember(normalized, "\x00absent"); ok {
			t.Fatalf("an absent key was found in %s", normalized)
		}
	})
}
