package sessioncore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// pairCodec is a toy SignedPair codec, shaped like Express's cookie-session:
// the value is the JSON in base64, the signature an HMAC of "name=value" in
// the cookie <name>.sig. It keeps no issue time.
type pairCodec struct{ keys [][]byte }

func (c pairCodec) SignatureCookie(name string) string { return name + ".sig" }

func (c pairCodec) sign(key []byte, name, value string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(name + "=" + value))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (c pairCodec) Encode(name string, p Payload) (string, error) {
	value := base64.StdEncoding.EncodeToString(p.JSON)
	return value + PairSeparator + c.sign(c.keys[0], name, value), nil
}

func (c pairCodec) Decode(name, sealed string) (Payload, int, error) {
	value, sig, ok := SplitPair(sealed)
	if !ok {
		return Payload{}, 0, ErrBadSignature
	}
	for i, k := range c.keys {
		if hmac.Equal([]byte(sig), []byte(c.sign(k, name, value))) {
			text, err := base64.StdEncoding.DecodeString(value)
			if err != nil {
				return Payload{}, i, ErrUndecodable
			}
			return Payload{JSON: text}, i, nil
		}
	}
	return Payload{}, 0, ErrBadSignature
}

func newPairManager(t *testing.T, cfg Config, keys ...string) *Manager {
	t.Helper()
	codec := pairCodec{}
	for _, k := range keys {
		codec.keys = append(codec.keys, []byte(k))
	}
	cfg.MaxCookieParts = 1
	m, err := NewManager(cfg, codec)
	must(t, err)
	return m
}

// pairCookie returns the Cookie header a browser sends back for a pair
// the codec sealed.
func pairCookie(t *testing.T, m *Manager, values string) string {
	t.Helper()
	sealed, err := m.codec.Encode(m.config.CookieName, Payload{JSON: []byte(values)})
	must(t, err)
	value, sig, _ := SplitPair(sealed)
	return m.config.CookieName + "=" + value + "; " + m.signatureCookie() + "=" + sig
}

func TestSignedPairIsWrittenAsTwoCookiesWithTheSameAttributes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CookieDomain, cfg.CookieSameSite, cfg.CookieSecure = "example.com", SameSiteLax, true
	m := newPairManager(t, cfg, "k")
	s := NewSession()
	must(t, s.Set("user", []byte(`"alice"`)))
	h := http.Header{}
	if action, err := m.Save(context.Background(), s, h); err != nil || action != CookieSet {
		t.Fatal(action, err)
	}
	lines := h["Set-Cookie"]
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "session=") || !strings.HasPrefix(lines[1], "session.sig=") {
		t.Fatalf("lines %q", lines)
	}
	attrs := func(line string) string { _, a, _ := strings.Cut(line, ";"); return a }
	if attrs(lines[0]) != attrs(lines[1]) {
		t.Errorf("attributes differ: %q", lines)
	}
	// A browser sends both back; they open.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "lang=en; "+cookiesOf(t, lines))
	opened, outcome := m.Open(r)
	if outcome != OutcomeValid || opened.String() != `{"user":"alice"}` {
		t.Errorf("opened %s, %s", opened, outcome)
	}

	// Emptied, both are deleted, with the same attributes.
	must(t, opened.Delete("user"))
	h = http.Header{}
	if action, err := m.Save(context.Background(), opened, h); err != nil || action != CookieDeleted {
		t.Fatal(action, err)
	}
	if want := m.deleteLines(); strings.Join(h["Set-Cookie"], "\n") != strings.Join(want, "\n") || len(want) != 2 ||
		!strings.HasPrefix(want[1], "session.sig=; Domain=example.com; Expires=Thu, 01 Jan 1970") || attrs(want[0]) != attrs(want[1]) {
		t.Errorf("deleted with %q", h["Set-Cookie"])
	}
}

func TestSignedPairOpensOnlyWhole(t *testing.T) {
	m := newPairManager(t, DefaultConfig(), "k", "old")
	old := newPairManager(t, DefaultConfig(), "old")
	wrong := newPairManager(t, DefaultConfig(), "wrong")
	good := pairCookie(t, m, `{"u":1}`)
	value, sig, _ := strings.Cut(good, "; ")
	for _, tc := range []struct {
		name, cookie string
		want         Outcome
	}{
		{"current key", good, OutcomeValid},
		{"signature first", sig + "; " + value, OutcomeValid},
		{"fallback key", pairCookie(t, old, `{"u":1}`), OutcomeFallbackKey},
		{"wrong key", pairCookie(t, wrong, `{"u":1}`), OutcomeBadSignature},
		{"no signature", value, OutcomeBadSignature},
		{"empty signature", value + "; session.sig=", OutcomeBadSignature},
		{"tampered value", strings.Replace(good, "session=", "session=x", 1), OutcomeBadSignature},
		{"tampered signature", strings.Replace(good, "session.sig=", "session.sig=x", 1), OutcomeBadSignature},
		{"signature alone", sig, OutcomeNew},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", tc.cookie)
		if _, outcome := m.Open(r); outcome != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, outcome, tc.want)
		}
	}
}

func TestSignedPairBudgetCountsBothCookies(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxCookieBytes = MinCookieBytes
	m := newPairManager(t, cfg, "k")
	values := `{"pad":"` + strings.Repeat("x", 330) + `"}`
	sealed, _ := m.codec.Encode("session", Payload{JSON: []byte(values)})
	value, _, _ := SplitPair(sealed)
	if len("session="+value) > MinCookieBytes || len("session="+value+"; session.sig=")+43 <= MinCookieBytes {
		t.Fatalf("the test's session does not straddle the budget: %d", len(value))
	}
	s := NewSession()
	must(t, s.Set("pad", []byte(`"`+strings.Repeat("x", 330)+`"`)))
	if _, err := m.Save(context.Background(), s, http.Header{}); !errors.Is(err, ErrCookieTooLarge) {
		t.Errorf("saved over the budget: %v", err)
	}
	// A request carrying such a pair is over the budget: both go.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", pairCookie(t, m, values))
	opened, outcome := m.Open(r)
	h := http.Header{}
	if _, err := m.Save(context.Background(), opened, h); outcome != OutcomeTooLarge || err != nil ||
		strings.Join(h["Set-Cookie"], "\n") != strings.Join(m.deleteLines(), "\n") {
		t.Errorf("%s, %v: %q", outcome, err, h["Set-Cookie"])
	}
}

func TestSignedPairIsForwardedAndStrippedTogether(t *testing.T) {
	for _, forward := range []bool{true, false} {
		m := newPairManager(t, DefaultConfig(), "k")
		g, err := NewGateway(m, GatewayConfig{ForwardCookie: forward})
		must(t, err)
		good := pairCookie(t, m, `{"u":1}`)
		value, sig, _ := strings.Cut(good, "; ")
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Add("Cookie", "a=1; "+sig+"; session.sig=second; b=2")
		r.Header.Add("Cookie", value+"; session=second; session.1=x")
		if a := g.Arrive(r, http.Header{}); a.Outcome != OutcomeValid {
			t.Fatalf("outcome %s", a.Outcome)
		}
		want := []string{"a=1; b=2"}
		if forward {
			want = []string{good + "; a=1; b=2"}
		}
		if got := r.Header["Cookie"]; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("forward %v: upstream gets %q, want %q", forward, got, want)
		}
	}
}

func TestSignedPairFromTheUpstreamIsAdopted(t *testing.T) {
	m := newPairManager(t, DefaultConfig(), "k")
	g, err := NewGateway(m, GatewayConfig{ForwardCookie: true})
	must(t, err)
	sealed, _ := m.codec.Encode("session", Payload{JSON: []byte(`{"user":"alice"}`)})
	value, sig, _ := SplitPair(sealed)

	// The app's pair is the new state, the mutation on top; one pair is
	// written back.
	header, d := roundTrip(t, g, "",
		"Set-Cookie", "session="+value+"; path=/; httponly",
		"Set-Cookie", "lang=en",
		"Set-Cookie", "session.sig="+sig+"; path=/; httponly",
		"X-Session-Update", `{"cart":[1]}`)
	if d.Refused != nil || d.Action != CookieSet {
		t.Fatalf("Depart = %+v", d)
	}
	lines := header["Set-Cookie"]
	if len(lines) != 3 || lines[0] != "lang=en" || !strings.HasPrefix(lines[1], "session=") || !strings.HasPrefix(lines[2], "session.sig=") {
		t.Fatalf("lines %q", lines)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", cookiesOf(t, lines[1:]))
	if s, _ := m.Open(r); s.String() != `{"cart":[1],"user":"alice"}` {
		t.Errorf("written back %s", s)
	}

	// A value without its signature does not open: refused.
	if _, d := roundTrip(t, g, "", "Set-Cookie", "session="+value); d.Status != http.StatusBadGateway {
		t.Errorf("an unsigned value: %+v", d)
	}
	// The app's deletion deletes both; a signature alone is dropped.
	header, d = roundTrip(t, g, "session="+value+"; session.sig="+sig,
		"Set-Cookie", "session=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly",
		"Set-Cookie", "session.sig=x; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly")
	if d.Action != CookieDeleted || strings.Join(header["Set-Cookie"], "\n") != strings.Join(m.deleteLines(), "\n") {
		t.Errorf("deletion: %+v %q", d, header["Set-Cookie"])
	}
	header, d = roundTrip(t, g, "session="+value+"; session.sig="+sig, "Set-Cookie", "session.sig=resigned; path=/")
	if d.Action != CookieUntouched || len(header["Set-Cookie"]) != 0 {
		t.Errorf("a lone signature: %+v %q", d, header["Set-Cookie"])
	}
}

func TestDeleteLinesForAnotherCodecsCookie(t *testing.T) {
	a := newCookieAttributes(&Config{CookieName: "legacy", CookiePath: "/app", CookieHTTPOnly: true})
	if got := a.deleteLines(""); len(got) != 1 || got[0] != a.deleteLine() {
		t.Errorf("one cookie: %q", got)
	}
	got := a.deleteLines(SignatureCookie(pairCodec{}, "legacy"))
	if len(got) != 2 || got[1] != "legacy.sig=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/app" {
		t.Errorf("a pair: %q", got)
	}
}
