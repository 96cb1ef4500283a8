package integration_tests

import (
	"cmp"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// requirePyJWT fails the test under CI=true, and skips it elsewhere, when
// Debian's python3-jwt (with python3-cryptography, for EdDSA) is missing.
func requirePyJWT(t *testing.T) {
	t.Helper()
	if err := exec.Command(debianPython, "-c", "import jwt, cryptography").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-jwt is required (apt-get install python3-jwt): %v", err)
		}
		t.Skipf("python3-jwt is not installed: %v", err)
	}
}

// pyVerify is an upstream's verifier outside Go: PyJWT fetches the JWKS
// from jwksURL, picks the key by the token's kid and checks the signature,
// exp and aud. It prints the claims, or REFUSED and the exception's class.
const pyVerify = `
import json, sys, jwt
url, token, audience = sys.argv[1:4]
try:
    key = jwt.PyJWKClient(url).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA", "ES256"], audience=audience,
                        options={"require": ["exp", "iat", "iss", "aud"]})
except Exception as e:
    print("REFUSED", type(e).__name__)
    sys.exit(0)
print(json.dumps(claims))
`

// requireJose fails the test under CI=true, and skips it elsewhere, when
// node or the pinned jose in integration_tests/joseverifier is missing
// (.ci/run installs it with npm ci).
func requireJose(t *testing.T) {
	t.Helper()
	_, nodeErr := exec.LookPath("node")
	_, joseErr := os.Stat("joseverifier/node_modules/jose/package.json")
	if err := cmp.Or(nodeErr, joseErr); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node and jose are required (cd integration_tests/joseverifier && npm ci): %v", err)
		}
		t.Skipf("node or jose is missing: %v", err)
	}
}

// joseVerifyAssertion is pyVerifyAssertion with npm's jose.
func joseVerifyAssertion(t *testing.T, jwksURL, token, audience string) (map[string]any, string) {
	t.Helper()
	cmd := exec.Command("node", "verify.mjs", jwksURL, token, audience)
	cmd.Dir = "joseverifier"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the verifier failed: %v\n%s", err, out)
	}
	if refused, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "REFUSED "); ok {
		return nil, refused
	}
	var claims map[string]any
	if err := json.Unmarshal(out, &claims); err != nil {
		t.Fatalf("verifier output %q: %v", out, err)
	}
	return claims, ""
}

func pyVerifyAssertion(t *testing.T, jwksURL, token, audience string) (map[string]any, string) {
	t.Helper()
	out, err := exec.Command(debianPython, "-c", pyVerify, jwksURL, token, audience).CombinedOutput()
	if err != nil {
		t.Fatalf("the verifier failed: %v\n%s", err, out)
	}
	if refused, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "REFUSED "); ok {
		return nil, refused
	}
	var claims map[string]any
	if err := json.Unmarshal(out, &claims); err != nil {
		t.Fatalf("verifier output %q: %v", out, err)
	}
	return claims, ""
}

// writeEd25519Key writes a new Ed25519 key to dir/name in PKCS #8 PEM.
func writeEd25519Key(t *testing.T, dir, name string) string {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// assertionUpstream records the request headers it was last sent; /login
// logs alice in.
type assertionUpstream struct {
	mu   sync.Mutex
	last http.Header
}

func (u *assertionUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.last = r.Header.Clone()
	u.mu.Unlock()
	if r.URL.Path == "/login" {
		w.Header().Set("X-Session-Update", `{"user":"alice","role":"editor"}`)
	}
	w.Write([]byte("ok"))
}

func (u *assertionUpstream) seen() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// signedGateway runs a gateway that signs sessions with the given
// sign_upstream block, and logs alice in.
func signedGateway(t *testing.T, block string) (*gateway, *assertionUpstream, string) {
	t.Helper()
	up := &assertionUpstream{}
	server := httptest.NewServer(up)
	t.Cleanup(server.Close)
	g := startGateway(t, strings.TrimPrefix(server.URL, "http://"), `
	session {
		secret `+currentSecret+`
		sign_upstream {
			`+block+`
		}
	}
	reverse_proxy {upstream}`)
	resp, _ := get(t, g.URL+"/login", "")
	return g, up, sessionCookie(t, resp).Value
}

func TestSignedSessionVerifiedOutsideGo(t *testing.T) {
	requirePyJWT(t)
	dir := t.TempDir()
	oldKey, newKey := writeEd25519Key(t, dir, "old.pem"), writeEd25519Key(t, dir, "new.pem")

	// The current config: the new key signs, the old one is still published.
	g, up, cookie := signedGateway(t, "key_file "+newKey+"\nkey_fallbacks_file "+oldKey+"\naudience api")
	resp, _ := get(t, g.URL+"/page", cookie, "X-Session-Assertion", "spoofed", "X-SESSION-ASSERTION", "spoofed-too")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	seen := up.seen()
	assertions := seen.Values("X-Session-Assertion")
	if len(assertions) != 1 || strings.HasPrefix(assertions[0], "spoofed") {
		t.Fatalf("the upstream got X-Session-Assertion %q", assertions)
	}
	jwks := g.URL + "/.well-known/session-jwks.json"
	claims, refused := pyVerifyAssertion(t, jwks, assertions[0], "api")
	if refused != "" {
		t.Fatalf("a valid assertion was refused: %s", refused)
	}
	session, _ := json.Marshal(claims["session"])
	if string(session) != seen.Get("X-Session") || claims["aud"] != "api" || claims["iss"] != strings.TrimPrefix(g.URL, "http://") {
		t.Errorf("claims %v, X-Session %s", claims, seen.Get("X-Session"))
	}
	if _, refused := pyVerifyAssertion(t, jwks, assertions[0], "other-service"); refused != "InvalidAudienceError" {
		t.Errorf("a wrong audience: %q", refused)
	}
	// The same with npm's jose.
	requireJose(t)
	if claims, refused := joseVerifyAssertion(t, jwks, assertions[0], "api"); refused != "" || claims["aud"] != "api" {
		t.Errorf("jose: a valid assertion: %v %s", claims, refused)
	}
	if _, refused := joseVerifyAssertion(t, jwks, assertions[0], "other-service"); refused != "ERR_JWT_CLAIM_VALIDATION_FAILED" {
		t.Errorf("jose: a wrong audience: %q", refused)
	}
	tampered := assertions[0][:len(assertions[0])-4] + "AAAA"
	if _, refused := joseVerifyAssertion(t, jwks, tampered, "api"); refused != "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" {
		t.Errorf("jose: a tampered signature: %q", refused)
	}

	// The JWKS, from the site (cacheable) and from the admin API.
	resp, body := get(t, jwks, "")
	if resp.Header.Get("Cache-Control") != "public, max-age=300" || strings.Count(body, `"kid"`) != 2 || strings.Contains(body, `"d"`) {
		t.Errorf("JWKS %s %v", body, resp.Header)
	}
	_, adminBody := get(t, g.Admin+"/session/jwks", "")
	var site, admin struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	json.Unmarshal([]byte(body), &site)
	json.Unmarshal([]byte(adminBody), &admin)
	if len(admin.Keys) != 2 || len(site.Keys) != 2 || admin.Keys[0].Kid != site.Keys[0].Kid {
		t.Errorf("admin JWKS %s, site JWKS %s", adminBody, body)
	}

	// An assertion of the old key, from a gateway not yet rotated, with a
	// ttl of 1s: it verifies against the current JWKS, which still
	// publishes the old key, and is refused once expired.
	old, oldUp, oldCookie := signedGateway(t, "key_file "+oldKey+"\naudience api\nttl 1s")
	get(t, old.URL+"/page", oldCookie)
	oldAssertion := oldUp.seen().Get("X-Session-Assertion")
	if _, refused := pyVerifyAssertion(t, jwks, oldAssertion, "api"); refused != "" {
		t.Errorf("an assertion of a fallback key was refused: %s", refused)
	}

	// Once the old key is rotated out, its assertions are refused.
	rotated, _, _ := signedGateway(t, "key_file "+newKey+"\naudience api\nheader X-Upstream-Assertion")
	if _, refused := pyVerifyAssertion(t, rotated.URL+"/.well-known/session-jwks.json", oldAssertion, "api"); refused == "" {
		t.Error("an assertion of a key rotated out verified")
	}

	time.Sleep(2100 * time.Millisecond)
	if _, refused := pyVerifyAssertion(t, jwks, oldAssertion, "api"); refused != "ExpiredSignatureError" {
		t.Errorf("an expired assertion: %q", refused)
	}
	if _, refused := joseVerifyAssertion(t, jwks, oldAssertion, "api"); refused != "ERR_JWT_EXPIRED" {
		t.Errorf("jose: an expired assertion: %q", refused)
	}
}

func TestSignedSessionHeaderOutsideTheProtocol(t *testing.T) {
	dir := t.TempDir()
	g, up, cookie := signedGateway(t, "key_file "+writeEd25519Key(t, dir, "k.pem")+"\naudience api\nheader X-Upstream-Assertion")
	req, _ := http.NewRequest("GET", g.URL+"/page", nil)
	req.Header.Set("Cookie", "session="+cookie)
	req.Header["X-Upstream-Assertion"] = []string{"spoofed"}
	req.Header["X-UPSTREAM-ASSERTION"] = []string{"spoofed"}
	req.Header["x-upstream.assertion"] = []string{"spoofed"}
	req.Header["Connection"] = []string{"X-Upstream-Assertion"}
	do(t, req)
	seen := up.seen()
	for name, values := range seen {
		if strings.Contains(strings.Join(values, ","), "spoofed") {
			t.Errorf("a spoofed %s reached the upstream: %q", name, values)
		}
	}
	if got := seen.Values("X-Upstream-Assertion"); len(got) != 1 || strings.Count(got[0], ".") != 2 {
		t.Errorf("X-Upstream-Assertion %q", got)
	}
	if seen.Get("X-Session-Assertion") != "" {
		t.Error("the assertion also went in X-Session-Assertion")
	}
	// An unauthenticated request still gets one, for the empty session.
	get(t, g.URL+"/page", "")
	if up.seen().Get("X-Upstream-Assertion") == "" {
		t.Error("no assertion for an empty session")
	}
}
