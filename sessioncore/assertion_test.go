package sessioncore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func newEd25519(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// verify checks jws against the JWKS the way an upstream would, with
// go-jose's own verifier, and returns its claims.
func verify(t *testing.T, jwks []byte, jws string, audience string, now time.Time) (map[string]any, error) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(jws, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256})
	if err != nil {
		return nil, err
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		return nil, jose.ErrJWKSKidNotFound
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(keys[0].Key, &std, &all); err != nil {
		return nil, err
	}
	if err := std.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{audience}, Time: now}, 0); err != nil {
		return nil, err
	}
	return all, nil
}

func TestAssertionRoundTrip(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]crypto.Signer{"ed25519": newEd25519(t), "p256": ec} {
		t.Run(name, func(t *testing.T) {
			now := time.Unix(1_800_000_000, 0)
			a, err := NewAsserter(AssertionConfig{Key: key, Audience: "api", Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			jws, err := a.Sign([]byte(`{"role":"admin","user":"alice"}`), "sid-123", "example.com")
			if err != nil {
				t.Fatal(err)
			}
			claims, err := verify(t, a.JWKS(), jws, "api", now)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"iss": "example.com", "aud": "api", "iat": float64(now.Unix()), "exp": float64(now.Unix() + 60),
				"sid": HashSessionID("sid-123"), "session": map[string]any{"role": "admin", "user": "alice"},
			}
			got, _ := json.Marshal(claims)
			wantJSON, _ := json.Marshal(want)
			if string(got) != string(wantJSON) {
				t.Errorf("claims %s, want %s", got, wantJSON)
			}
			if strings.Contains(jws, "sid-123") {
				t.Error("the raw session ID is in the assertion")
			}
			if _, err := verify(t, a.JWKS(), jws, "other", now); err == nil {
				t.Error("a wrong audience verified")
			}
			if _, err := verify(t, a.JWKS(), jws, "api", now.Add(61*time.Second)); err == nil {
				t.Error("an expired assertion verified")
			}
		})
	}
}

func TestAssertionTopClaimsAndIssuer(t *testing.T) {
	a, err := NewAsserter(AssertionConfig{Key: newEd25519(t), Audience: "api", Issuer: "gw", Claim: ClaimTop, TTL: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := a.Sign([]byte(`{"user":"alice","iss":"evil","exp":99999999999}`), "", "example.com")
	if err != nil {
		t.Fatal(err)
	}
	claims, err := verify(t, a.JWKS(), jws, "api", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if claims["user"] != "alice" || claims["iss"] != "gw" || claims["sid"] != nil {
		t.Errorf("claims %v", claims)
	}
	if exp := int64(claims["exp"].(float64)); exp > time.Now().Add(6*time.Minute).Unix() {
		t.Errorf("a session key overrode exp: %d", exp)
	}
}

func TestAssertionRotation(t *testing.T) {
	old, current := newEd25519(t), newEd25519(t)
	before, _ := NewAsserter(AssertionConfig{Key: old, Audience: "api"})
	jws, err := before.Sign([]byte(`{"user":"alice"}`), "", "h")
	if err != nil {
		t.Fatal(err)
	}
	after, err := NewAsserter(AssertionConfig{Key: current, Fallbacks: []crypto.PublicKey{old.Public()}, Audience: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Keys()) != 2 || after.Keys()[0].KeyID != after.KeyID() {
		t.Fatalf("JWKS %s", after.JWKS())
	}
	if _, err := verify(t, after.JWKS(), jws, "api", time.Now()); err != nil {
		t.Errorf("an assertion of the fallback key: %v", err)
	}
	retired, _ := NewAsserter(AssertionConfig{Key: current, Audience: "api"})
	if _, err := verify(t, retired.JWKS(), jws, "api", time.Now()); err == nil {
		t.Error("an assertion of a key rotated out verified")
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	json.Unmarshal(after.JWKS(), &set)
	for _, k := range set.Keys {
		if k["d"] != nil {
			t.Error("the JWKS holds a private key")
		}
		if k["kid"] == "" || k["alg"] != "EdDSA" || k["use"] != "sig" {
			t.Errorf("key %v", k)
		}
	}
}

func TestAssertionCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a, _ := NewAsserter(AssertionConfig{Key: newEd25519(t), Audience: "api", Now: func() time.Time { return now }})
	first, _ := a.Sign([]byte(`{"user":"alice"}`), "", "h")
	now = now.Add(29 * time.Second)
	if again, _ := a.Sign([]byte(`{"user":"alice"}`), "", "h"); again != first {
		t.Error("the same session was signed again within half the ttl")
	}
	if other, _ := a.Sign([]byte(`{"user":"bob"}`), "", "h"); other == first {
		t.Error("a changed session got the old assertion")
	}
	if other, _ := a.Sign([]byte(`{"user":"alice"}`), "", "other-host"); other == first {
		t.Error("another issuer got the old assertion")
	}
	if other, _ := a.Sign([]byte(`{"user":"alice"}`), "sid", "h"); other == first {
		t.Error("another session ID got the old assertion")
	}
	big := `{"pad":"` + strings.Repeat("y", 5000) + `"}`
	bigFirst, _ := a.Sign([]byte(big), "", "h")
	if again, _ := a.Sign([]byte(big), "", "h"); again != bigFirst {
		t.Error("a large session was signed again")
	}
	if other, _ := a.Sign([]byte(strings.Replace(big, "yy", "yz", 1)), "", "h"); other == bigFirst {
		t.Error("a changed large session got the old assertion")
	}
	now = now.Add(2 * time.Second)
	if renewed, _ := a.Sign([]byte(`{"user":"alice"}`), "", "h"); renewed == first {
		t.Error("an assertion past half its ttl was reused")
	}
}

func TestAssertionKeys(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := NewAsserter(AssertionConfig{Key: small, Audience: "api"}); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("RSA 1024: %v", err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if _, err := NewAsserter(AssertionConfig{Key: p224, Audience: "api"}); err == nil {
		t.Error("P-224 accepted")
	}
	if _, err := NewAsserter(AssertionConfig{Key: newEd25519(t)}); err == nil {
		t.Error("no audience accepted")
	}
	der, _ := x509.MarshalPKCS8PrivateKey(newEd25519(t))
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if _, err := ParseSigningKeyPEM(pemKey); err != nil {
		t.Error(err)
	}
	if _, err := ParseSigningKeyPEM([]byte("not a key")); err == nil {
		t.Error("garbage accepted")
	}
	der, _ = x509.MarshalPKCS8PrivateKey(small)
	if _, err := ParseSigningKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err == nil {
		t.Error("RSA 1024 file accepted")
	}
}

func TestGatewayAssertion(t *testing.T) {
	key := newEd25519(t)
	a, _ := NewAsserter(AssertionConfig{Key: key, Audience: "api"})
	for _, header := range []string{"X-Session-Assertion", "X-Upstream-Assertion"} {
		m, err := NewManager(DefaultConfig(), assertionTestCodec(t))
		if err != nil {
			t.Fatal(err)
		}
		g, err := NewGateway(m, GatewayConfig{Assertion: a, AssertionHeader: header})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "http://example.com/", nil)
		r.Header.Set(strings.ReplaceAll(header, "-", "_"), "spoofed")
		r.Header.Set(header, "spoofed")
		r.Header.Set("Connection", header)
		g.Arrive(r, httptest.NewRecorder().Header())
		got := r.Header.Values(header)
		if len(got) != 1 || got[0] == "spoofed" {
			t.Fatalf("%s: %q", header, got)
		}
		if r.Header.Get(strings.ReplaceAll(header, "-", "_")) != "" || r.Header.Get("Connection") != "" {
			t.Errorf("%s: a spoofed spelling survived: %v", header, r.Header)
		}
		claims, err := verify(t, a.JWKS(), got[0], "api", time.Now())
		if err != nil || claims["iss"] != "example.com" {
			t.Errorf("%s: %v %v", header, claims, err)
		}
	}
	m, _ := NewManager(DefaultConfig(), assertionTestCodec(t))
	for _, bad := range []string{"X-Session", "X-Session-Update", "x_session_id", "Cookie", "bad header"} {
		if _, err := NewGateway(m, GatewayConfig{Assertion: a, AssertionHeader: bad}); err == nil {
			t.Errorf("assertion header %q accepted", bad)
		}
	}
}

func assertionTestCodec(t *testing.T) Codec {
	t.Helper()
	codec, err := NewSecureCookieCodec(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return codec
}

// BenchmarkAssertion measures what signing adds to a request whose session
// was signed before (a cache hit), and the cost of a new signature.
func BenchmarkAssertion(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	a, _ := NewAsserter(AssertionConfig{Key: key, Audience: "api"})
	session := `{"pad":"` + strings.Repeat("x", 130) + `","role":"editor","user_id":"u-12345"}`
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.sign(session, "", "example.com"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.make([]byte(session), "", "example.com", time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
