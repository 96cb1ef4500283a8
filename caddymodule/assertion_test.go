package caddymodule

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// writeKeyFile writes key, PKCS #8 in PEM, to a file of its own.
func writeKeyFile(t testing.TB, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "assertion.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newAssertionKeyFile(t testing.TB) string {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return writeKeyFile(t, key)
}

func TestSignUpstreamKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	secretText := "THIS-IS-NOT-A-KEY-but-a-secret-0123456789"
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte(secretText), 0o600)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	smallFile, p224File := writeKeyFile(t, small), writeKeyFile(t, p224)
	for _, tc := range []struct{ file, fallbacks, want string }{
		{filepath.Join(dir, "missing.pem"), "", "missing.pem"},
		{garbage, "", "garbage.pem: no PEM private key"},
		{smallFile, "", "too short"},
		{p224File, "", smallFile[:0] + "assertion.pem"},
		{newAssertionKeyFile(t), garbage + ".nope", "key_fallbacks_file"},
	} {
		h := &Handler{Secret: testSecretLiteral, SignUpstream: &SignUpstream{KeyFile: tc.file, KeyFallbacksFile: tc.fallbacks, Audience: "api"}}
		err := h.Provision(serverContext(t, 0))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.file, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secretText) {
			t.Errorf("the key file's content is in the error: %v", err)
		}
	}
	h := &Handler{Secret: testSecretLiteral, SignUpstream: &SignUpstream{KeyFile: newAssertionKeyFile(t)}}
	if err := h.Provision(serverContext(t, 0)); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Errorf("no audience: %v", err)
	}
}

func TestSignUpstreamCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`session {
		secret {env.S}
		sign_upstream {
			key_file /k.pem
			key_fallbacks_file /old.pem
			audience api
			issuer gw
			ttl 2m
			header X-Upstream-Assertion
			claim top
			jwks_path /keys.json
		}
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(h.SignUpstream)
	want := `{"key_file":"/k.pem","key_fallbacks_file":"/old.pem","audience":"api","issuer":"gw","ttl":120000000000,"header":"X-Upstream-Assertion","claim":"top","jwks_path":"/keys.json"}`
	if string(got) != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	for _, bad := range []string{
		`sign_upstream { audience api }`,
		`sign_upstream { key_file /k }`,
		`sign_upstream { key_file /k; audience a; claim all }`,
		`sign_upstream { key_file /k; audience a; bogus 1 }`,
		`sign_upstream { key_file /k; audience a; header Cookie }`,
		`sign_upstream { key_file /k; audience a; jwks_path keys }`,
	} {
		src := "session {\n secret {env.S}\n" + strings.ReplaceAll(bad, "; ", "\n") + "\n}"
		src = strings.ReplaceAll(strings.ReplaceAll(src, "{ ", "{\n"), " }", "\n}")
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(src)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestSignUpstreamHandler(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) {
		h.SignUpstream = &SignUpstream{KeyFile: newAssertionKeyFile(t), Audience: "api"}
	})
	cookie := login(t, h, `{"user":"alice"}`)

	// The JWKS, answered by the handler itself.
	w := httptest.NewRecorder()
	if _, err := serve(h, w, httptest.NewRequest("GET", DefaultJWKSPath, nil), func(http.ResponseWriter, *http.Request) error {
		t.Error("the JWKS request reached the upstream")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if w.Code != 200 || w.Header().Get("Cache-Control") != "public, max-age=300" || w.Header().Get("Vary") != "" {
		t.Errorf("JWKS response %d %v", w.Code, w.Header())
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", w.Body, err)
	}
	if !strings.Contains(string(publishedKeys.jwks()), set.Keys[0].KeyID) {
		t.Error("the admin JWKS lacks the handler's key")
	}

	r := httptest.NewRequest("GET", "http://example.com/", nil)
	r.AddCookie(cookie)
	r.Header.Set("X-Session-Assertion", "spoofed")
	var assertion, session string
	if _, err := serve(h, httptest.NewRecorder(), r, func(w http.ResponseWriter, r *http.Request) error {
		assertion, session = r.Header.Get("X-Session-Assertion"), r.Header.Get("X-Session")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatalf("assertion %q: %v", assertion, err)
	}
	var claims struct {
		jwt.Claims
		Session json.RawMessage `json:"session"`
	}
	if err := tok.Claims(set.Keys[0].Key, &claims); err != nil {
		t.Fatal(err)
	}
	if string(claims.Session) != session || claims.Issuer != "example.com" || !claims.Audience.Contains("api") {
		t.Errorf("claims %+v, session %s", claims, session)
	}
}
