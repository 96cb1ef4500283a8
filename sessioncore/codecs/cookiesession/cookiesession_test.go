package cookiesession

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
)

type vector struct {
	Name         string   `json:"name"`
	CookieName   string   `json:"cookie_name"`
	Value        string   `json:"value"`
	Sig          *string  `json:"sig"`
	SetCookie    []string `json:"set_cookie"`
	Secret       string   `json:"secret"`
	Fallbacks    []string `json:"fallbacks"`
	Expect       string   `json:"expect"`
	SessionJSON  string   `json:"session_json"`
	ExpressReads *string  `json:"express_reads"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		CookieSession string   `json:"cookie-session"`
		Keygrip       string   `json:"keygrip"`
		Vectors       []vector `json:"vectors"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) < 30 || file.CookieSession != "2.1.1" || file.Keygrip != "1.1.0" {
		t.Fatalf("%d vectors from cookie-session %s, keygrip %s", len(file.Vectors), file.CookieSession, file.Keygrip)
	}
	return file.Vectors
}

func newCodec(t testing.TB, secret string, fallbacks ...string) *Codec {
	t.Helper()
	var fb [][]byte
	for _, f := range fallbacks {
		fb = append(fb, []byte(f))
	}
	c, err := New([]byte(secret), fb...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (v vector) cookie() string {
	c := v.CookieName + "=" + v.Value
	if v.Sig != nil {
		c += "; " + v.CookieName + ".sig=" + *v.Sig
	}
	return c
}

// TestVectors opens every pair the real cookie-session made through a
// Manager: each opens to what Express reads, or is refused as Express
// refuses it; and a session the codec seals is, to the byte, the pair
// Express wrote.
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			codec := newCodec(t, v.Secret, v.Fallbacks...)
			cfg := sessioncore.DefaultConfig()
			cfg.CookieName, cfg.MaxCookieParts = v.CookieName, 1
			cfg.IdleTimeout = time.Hour // an unchanged session is reissued
			m, err := sessioncore.NewManager(cfg, codec)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Cookie", "other=1; "+v.cookie())
			s, outcome := m.Open(r)
			if string(outcome) != v.Expect {
				t.Fatalf("outcome %s, want %s", outcome, v.Expect)
			}
			if (v.ExpressReads == nil) != (v.Expect == "bad_signature") {
				t.Fatalf("Express reads %v, the vector expects %s", v.ExpressReads, v.Expect)
			}
			if v.Expect == "bad_signature" {
				if s.Len() != 0 {
					t.Errorf("want a fresh session, got %s", s)
				}
				return
			}
			var got, want any
			_ = json.Unmarshal([]byte(s.String()), &got)
			_ = json.Unmarshal([]byte(*v.ExpressReads), &want)
			if g, _ := json.Marshal(got); string(g) != func() string { w, _ := json.Marshal(want); return string(w) }() {
				t.Errorf("the gateway reads %s, Express %s", s, *v.ExpressReads)
			}
			// Sealed afresh from Express's JSON under the key that made
			// it, the pair is Express's, byte for byte.
			maker := codec
			if v.Expect == "fallback_key" {
				maker = newCodec(t, v.Fallbacks[0])
			}
			sealed, err := maker.Encode(v.CookieName, sessioncore.Payload{JSON: []byte(v.SessionJSON)})
			if err != nil || sealed != v.Value+";"+*v.Sig {
				t.Errorf("sealed %s, Express wrote %s;%s (%v)", sealed, v.Value, *v.Sig, err)
			}
			// An unchanged session is reissued under the current key with
			// Express's own value when its JSON is ASCII; otherwise with
			// the same JSON, non-ASCII escaped, as the gateway keeps it.
			h := http.Header{}
			if _, err := m.Save(context.Background(), s, h); err != nil {
				t.Fatal(err)
			}
			lines := h["Set-Cookie"]
			if len(lines) != 2 {
				t.Fatalf("reissued as %q", lines)
			}
			value, _, _ := strings.Cut(strings.TrimPrefix(lines[0], v.CookieName+"="), ";")
			ascii := !strings.ContainsFunc(v.SessionJSON, func(r rune) bool { return r > 0x7f })
			if ascii && value != v.Value {
				t.Errorf("reissued as %s, Express wrote %s", value, v.Value)
			}
			if p, i, err := newCodec(t, v.Secret).Decode(v.CookieName, value+";"+strings.Split(strings.TrimPrefix(lines[1], v.CookieName+".sig="), ";")[0]); err != nil || i != 0 {
				t.Errorf("the reissued pair does not open under the current key alone: %v", err)
			} else {
				var again any
				_ = json.Unmarshal(p.JSON, &again)
				if g, _ := json.Marshal(again); string(g) != func() string { w, _ := json.Marshal(want); return string(w) }() {
					t.Errorf("reissued %s, Express wrote %s", p.JSON, v.SessionJSON)
				}
			}
		})
	}
}

// The Set-Cookie lines Express writes are those the gateway writes, but
// for the attributes' spelling.
func TestVectorsSetCookieLines(t *testing.T) {
	for _, v := range loadVectors(t) {
		if len(v.SetCookie) == 0 {
			continue
		}
		if len(v.SetCookie) != 2 || v.SetCookie[0] != v.CookieName+"="+v.Value+"; path=/; httponly" ||
			v.SetCookie[1] != v.CookieName+".sig="+*v.Sig+"; path=/; httponly" {
			t.Errorf("%s: Express wrote %q", v.Name, v.SetCookie)
		}
	}
}

func TestSignatureIsKeygripsText(t *testing.T) {
	c := newCodec(t, "k")
	// keygrip: base64 of HMAC-SHA1("k", "session=e30="), '/' -> '_', '+' -> '-', no '='.
	sealed, _ := c.Encode("session", sessioncore.Payload{JSON: []byte(`{}`)})
	value, sig, _ := strings.Cut(sealed, ";")
	if value != "e30=" || len(sig) != 27 || strings.ContainsAny(sig, "+/=") {
		t.Errorf("sealed %q", sealed)
	}
	if _, _, err := c.Decode("session", value+";"+sig+"="); !errors.Is(err, sessioncore.ErrBadSignature) {
		t.Errorf("a padded signature verified: %v", err)
	}
	if _, _, err := c.Decode("session", value); !errors.Is(err, sessioncore.ErrBadSignature) {
		t.Errorf("a value without its signature verified: %v", err)
	}
}

func TestDecodeReadsAsNodeDoes(t *testing.T) {
	c := newCodec(t, "k")
	seal := func(value string) string {
		s, _ := c.Encode("session", sessioncore.Payload{Sealed: []byte(value)})
		return s
	}
	for value, want := range map[string]string{
		base64.StdEncoding.EncodeToString([]byte(`{"a":"~~~?"}`)):     `{"a":"~~~?"}`,
		base64.RawURLEncoding.EncodeToString([]byte(`{"a":"~~~?"}`)):  `{"a":"~~~?"}`,
		base64.StdEncoding.EncodeToString([]byte("{\"a\":\"\xff\"}")): "{\"a\":\"\uFFFD\"}",
	} {
		p, i, err := c.Decode("session", seal(value))
		if err != nil || i != 0 || string(p.JSON) != want || string(p.Sealed) != value || !p.Issued.IsZero() {
			t.Errorf("%s: %s %d %v", value, p.JSON, i, err)
		}
	}
	for _, value := range []string{"!!!", base64.StdEncoding.EncodeToString([]byte(`[1]`)), base64.StdEncoding.EncodeToString([]byte(`null`))} {
		if _, _, err := c.Decode("session", seal(value)); !errors.Is(err, sessioncore.ErrUndecodable) {
			t.Errorf("%s: %v", value, err)
		}
	}
}

func TestNewRefusesEmptySecrets(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("an empty secret")
	}
	if _, err := New([]byte("k"), []byte("")); err == nil {
		t.Error("an empty fallback")
	}
	info, ok := sessioncore.LookupCodec(Name)
	if !ok || !info.SharedWithApp || !info.AnySecretLength || info.KeepsCreationTime || info.DefaultCookieName != "session" {
		t.Errorf("registered as %+v", info)
	}
	if sessioncore.SignatureCookie(newCodec(t, "k"), "myapp") != "myapp.sig" {
		t.Error("signature cookie name")
	}
}
