package django

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// vectorFile is the file make_vectors.py writes from real Django.
type vectorFile struct {
	Django  string `json:"django"`
	Salt    string `json:"salt"`
	Vectors []struct {
		Name         string   `json:"name"`
		Secret       string   `json:"secret"`
		Fallbacks    []string `json:"fallbacks"`
		Cookie       string   `json:"cookie"`
		Now          int64    `json:"now"`
		MaxAge       int64    `json:"max_age"`
		Expect       string   `json:"expect"`
		Django       string   `json:"django"`
		PayloadJSON  string   `json:"payload_json"`
		CookieMaxAge string   `json:"cookie_max_age"`
		Why          string   `json:"why"`
	} `json:"vectors"`
}

func requestWithCookie(value string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	if value != "" {
		r.Header.Set("Cookie", "theme=dark; "+DefaultCookieName+"="+value)
	}
	return r
}

func newManager(t testing.TB, codec *Codec, lifetime time.Duration, now time.Time) *sessioncore.Manager {
	t.Helper()
	cfg := sessioncore.DefaultConfig()
	cfg.CookieName = DefaultCookieName
	cfg.Lifetime = lifetime
	m, err := sessioncore.NewManager(cfg, codec, sessioncore.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file vectorFile
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) < 35 || file.Salt != Salt || !strings.HasPrefix(file.Django, "3.2") {
		t.Fatalf("%d vectors, salt %q, from Django %s", len(file.Vectors), file.Salt, file.Django)
	}
	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			if v.Why == "" && (v.Expect == "valid") != (v.Django == "valid") {
				t.Fatalf("the vector says %s, Django %s, without a reason", v.Expect, v.Django)
			}
			var fallbacks [][]byte
			for _, f := range v.Fallbacks {
				fallbacks = append(fallbacks, []byte(f))
			}
			codec, err := New([]byte(v.Secret), fallbacks...)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(v.Now, 0)
			manager := newManager(t, codec, time.Duration(v.MaxAge)*time.Second, now)
			s, outcome := manager.Open(requestWithCookie(v.Cookie))
			switch v.Expect {
			case "valid":
				want := sessioncore.OutcomeValid
				if len(v.Fallbacks) > 0 {
					want = sessioncore.OutcomeFallbackKey
				}
				if outcome != want {
					t.Fatalf("outcome %s, want %s", outcome, want)
				}
				// Under the current key and algorithm, the gateway's
				// cookie is Django's to the byte.
				current := len(v.Fallbacks) == 0 && !strings.HasPrefix(v.Name, "legacy_sha1")
				checkValid(t, codec, manager, s, v.Cookie, v.PayloadJSON, v.CookieMaxAge, current)
			case "bad_signature", "expired", "new", "undecodable":
				if string(outcome) != v.Expect {
					t.Errorf("outcome %s, want %s", outcome, v.Expect)
				}
				if s.Len() != 0 || s.IsNull() {
					t.Errorf("want a fresh session, got %s", s)
				}
			default:
				t.Fatalf("unknown expectation %q", v.Expect)
			}
		})
	}
}

// checkValid: the session is Django's dict as it is; reissuing it
// unchanged gives Django's very cookie back; a changed one is written in
// Django's format; the cookie's Max-Age is the one Django set.
func checkValid(t *testing.T, codec *Codec, manager *sessioncore.Manager, s *sessioncore.Session, cookie, payloadJSON, maxAge string, current bool) {
	t.Helper()
	var want, got any
	if err := json.Unmarshal([]byte(payloadJSON), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(s.String()), &got); err != nil {
		t.Fatalf("upstream sees %s: %v", s, err)
	}
	if gotText, wantText := mustJSON(got), mustJSON(want); gotText != wantText {
		t.Errorf("upstream sees %s, Django stored %s", s, payloadJSON)
	}
	original, _, err := codec.Decode(DefaultCookieName, cookie)
	if err != nil {
		t.Fatal(err)
	}
	if string(original.JSON) != payloadJSON {
		t.Errorf("decoded %s, Django wrote %s", original.JSON, payloadJSON)
	}
	// Reissued unchanged at the same time under the current key: Django's
	// own bytes.
	reissued, err := codec.Encode(DefaultCookieName, sessioncore.Payload{Issued: original.Issued, Sealed: original.Sealed})
	if err != nil {
		t.Fatal(err)
	}
	if current && reissued != cookie {
		t.Errorf("reissued\n%s\nDjango wrote\n%s", reissued, cookie)
	}
	// Sealed afresh from Django's JSON: Django's bytes too, unless
	// compressed (Go's deflate is not CPython's zlib at level 6), which
	// must still open to the same JSON.
	ours, err := codec.Encode(DefaultCookieName, sessioncore.Payload{JSON: []byte(payloadJSON), Issued: original.Issued})
	if err != nil {
		t.Fatal(err)
	}
	if current && !strings.HasPrefix(cookie, ".") && !strings.HasPrefix(ours, ".") && ours != cookie {
		t.Errorf("sealed\n%s\nDjango wrote\n%s", ours, cookie)
	}
	if p, _, err := codec.Decode(DefaultCookieName, ours); err != nil || string(p.JSON) != payloadJSON {
		t.Errorf("our cookie opens to %s, %v", p.JSON, err)
	}
	if s.Len() == 0 {
		return // Django deletes an empty session's cookie
	}
	// The cookie the gateway writes for this session expires as Django's.
	if err := s.Set("touched", json.RawMessage("1")); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if action, err := manager.Save(context.Background(), s, h); err != nil || action != sessioncore.CookieSet {
		t.Fatalf("save: %s %v", action, err)
	}
	line := h.Get("Set-Cookie")
	if !strings.HasPrefix(line, DefaultCookieName+"=") {
		t.Fatalf("Set-Cookie %q", line)
	}
	if got := attribute(line, "Max-Age"); got != maxAge {
		t.Errorf("Max-Age %q, Django set %q (%s)", got, maxAge, line)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// attribute returns a Set-Cookie line's attribute value ("" when absent).
func attribute(line, name string) string {
	for _, part := range strings.Split(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func TestWritesWhatDjangoWrites(t *testing.T) {
	// Django's JSONSerializer: compact, ASCII-escaped; uncompressed when
	// zlib does not save more than a byte. Checked against
	// signing.dumps({"user":"alice","user_id":42}, salt=Salt, compress=True)
	// at 1700000000 with the vectors' secret ("simple").
	codec, _ := New([]byte("django-secret-for-vectors"))
	got, _ := codec.Encode(DefaultCookieName, sessioncore.Payload{JSON: []byte(`{"user":"alice","user_id":42}`), Issued: time.Unix(1700000000, 0)})
	if want := "eyJ1c2VyIjoiYWxpY2UiLCJ1c2VyX2lkIjo0Mn0:1r31eq:"; !strings.HasPrefix(got, want) {
		t.Errorf("got %s, want %s...", got, want)
	}
}

func TestBase62(t *testing.T) {
	for _, c := range []struct {
		n    int64
		text string
	}{{0, "0"}, {61, "z"}, {62, "10"}, {1700000000, "1r31eq"}, {-62, "-10"}, {1<<63 - 1, "AzL8n0Y58m7"}} {
		if got := string(appendBase62(nil, c.n)); got != c.text {
			t.Errorf("encode %d = %s, want %s", c.n, got, c.text)
		}
		if got, ok := parseBase62(c.text); !ok || got != c.n {
			t.Errorf("decode %s = %d %v", c.text, got, ok)
		}
	}
	for _, bad := range []string{"", "-", "!", "1-", "AzL8n0Y58m8", "zzzzzzzzzzzz"} {
		if n, ok := parseBase62(bad); ok {
			t.Errorf("%q read as %d", bad, n)
		}
	}
}

func TestCookieExpires(t *testing.T) {
	codec, _ := New([]byte("k"))
	now := time.Date(2024, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	const lifetime = 14 * 24 * time.Hour
	for _, c := range []struct {
		expiry     string // "" for none
		persistent bool
		in         time.Duration
	}{
		{"", true, lifetime},
		{"null", true, lifetime},
		{`""`, true, lifetime},
		{"0", false, 0},
		{"0.0", false, 0},
		{"-0", false, 0},
		{"false", false, 0},
		{"true", true, time.Second},
		{"300", true, 300 * time.Second},
		{"2.9", true, 2 * time.Second},
		{"-5", true, -5 * time.Second},
		{"1e400", true, lifetime}, // Python's inf: Django fails; the default
		// delta.days * 86400 + delta.seconds: whole seconds, down.
		{`"2024-01-02T04:04:05+00:00"`, true, time.Hour - time.Second},
		{`"2024-01-02T05:04:05.750000+01:00"`, true, time.Hour},
		{`"2024-01-02 04:04:05"`, true, time.Hour - time.Second},
		{`"2024-01-02T03:04:04+00:00"`, true, -2 * time.Second},
		{`"not a date"`, true, lifetime},
		{`[1]`, true, lifetime},
	} {
		values := func(key string) (json.RawMessage, bool) {
			if key != ExpiryKey || c.expiry == "" || c.expiry == "null" {
				return nil, false
			}
			return json.RawMessage(c.expiry), true
		}
		expires, persistent := codec.CookieExpires(values, now, lifetime)
		if persistent != c.persistent || (persistent && !expires.Equal(now.Add(c.in))) {
			t.Errorf("_session_expiry %s: %v %v, want %v in %s", c.expiry, expires, persistent, c.persistent, c.in)
		}
	}
}

func TestRefusesZlibBomb(t *testing.T) {
	codec, _ := New([]byte("k"))
	bomb := `{"k":"` + strings.Repeat("a", sessioncore.MaxInflatedPayload+10) + `"}`
	value, _ := codec.Encode(DefaultCookieName, sessioncore.Payload{JSON: []byte(bomb), Issued: time.Now()})
	if len(value) > sessioncore.MaxCookieSize {
		t.Skipf("compressed bomb is %d bytes", len(value))
	}
	if _, _, err := codec.Decode(DefaultCookieName, value); err == nil || !strings.Contains(err.Error(), "inflates beyond") {
		t.Errorf("err = %v", err)
	}
}

func TestLatin1Payload(t *testing.T) {
	// JSONSerializer.loads reads bytes as Latin-1; Django never writes one
	// above 0x7f, but a key holder may.
	if got := string(latin1ToUTF8([]byte("{\"n\":\"Zo\xeb\"}"))); got != `{"n":"Zoë"}` {
		t.Errorf("got %q", got)
	}
}

func TestRequiresASecret(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("empty secret accepted")
	}
	if _, err := New([]byte("k"), []byte("")); err == nil {
		t.Error("empty fallback accepted")
	}
}

func TestRegistered(t *testing.T) {
	info, ok := sessioncore.LookupCodec(Name)
	if !ok || !info.SharedWithApp || !info.AnySecretLength || info.DefaultCookieName != "sessionid" {
		t.Fatalf("%+v %v", info, ok)
	}
	if c, err := info.New([]byte("k")); err != nil || c == nil {
		t.Fatal(err)
	}
}
