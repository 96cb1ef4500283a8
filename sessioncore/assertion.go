package sessioncore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// Assertions: the session signed for the upstream, as a compact JWS, so
// that an upstream (or a service behind it) can trust the session without
// trusting the network between it and the gateway.

// The claim modes of an assertion.
const (
	// ClaimSession puts the session under the "session" claim.
	ClaimSession = "session"
	// ClaimTop puts the session's top-level keys among the claims; the
	// registered claims the gateway sets (iss, aud, iat, exp, sid) win
	// over session keys of the same names, which are left out.
	ClaimTop = "top"
)

// DefaultAssertionTTL is how long an assertion is valid by default.
const DefaultAssertionTTL = time.Minute

// MinRSAKeyBits is the smallest RSA key an assertion is signed with.
const MinRSAKeyBits = 2048

// The bounds of the assertions kept for reuse: how many, and their bytes
// (inputs and JWSs) together. Inputs over maxCachedInput are kept by their
// SHA-256.
const (
	assertionCacheSize  = 4096
	assertionCacheBytes = 8 << 20
	maxCachedInput      = 4 << 10
)

// AssertionConfig configures an Asserter.
type AssertionConfig struct {
	// Key signs the assertions: an ed25519.PrivateKey (EdDSA), an
	// *ecdsa.PrivateKey on P-256 (ES256), P-384 (ES384) or P-521 (ES512),
	// or an *rsa.PrivateKey of at least 2048 bits (RS256).
	Key crypto.Signer
	// Fallbacks are older public keys still published in the JWKS, so that
	// assertions signed before a rotation still verify; never used to sign.
	Fallbacks []crypto.PublicKey
	// Audience is the aud claim. Required.
	Audience string
	// Issuer is the iss claim; empty means the request's host.
	Issuer string
	// TTL is how long an assertion is valid; 0 means DefaultAssertionTTL.
	TTL time.Duration
	// Claim is ClaimSession (the default, "") or ClaimTop.
	Claim string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Asserter signs sessions for upstreams and publishes its public keys. It
// makes at most one JWS per distinct session, session ID, issuer and
// audience within the JWS's validity: a signed assertion is reused while
// more than half its TTL remains. It is safe for concurrent use.
type Asserter struct {
	signer   jose.Signer
	audience string
	issuer   string
	ttl      time.Duration
	top      bool
	now      func() time.Time
	jwks     []byte
	kid      string

	seed       maphash.Seed
	mu         sync.Mutex
	cache      map[uint64]cachedAssertion
	cacheBytes int
}

// keyBuffers hold the inputs of a cache key while it is hashed.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

type cachedAssertion struct {
	input     string // what the key was hashed from
	jws       string
	renewFrom time.Time // past the half of its validity
}

func (e cachedAssertion) size() int { return len(e.input) + len(e.jws) }

// NewAsserter returns the asserter of c.
func NewAsserter(c AssertionConfig) (*Asserter, error) {
	if c.Key == nil {
		return nil, errors.New("sign_upstream: a signing key is required")
	}
	if c.Audience == "" {
		return nil, errors.New("sign_upstream: audience is required")
	}
	switch c.Claim {
	case "", ClaimSession, ClaimTop:
	default:
		return nil, fmt.Errorf("sign_upstream: claim must be %s or %s, not %q", ClaimSession, ClaimTop, c.Claim)
	}
	if c.TTL < 0 {
		return nil, errors.New("sign_upstream: ttl must be positive")
	}
	current, err := PublicJWK(c.Key.Public())
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(current.Algorithm), Key: jose.JSONWebKey{Key: c.Key, KeyID: current.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("sign_upstream: %w", err)
	}
	keys := []jose.JSONWebKey{current}
	for i, pub := range c.Fallbacks {
		k, err := PublicJWK(pub)
		if err != nil {
			return nil, fmt.Errorf("fallback key %d: %w", i+1, err)
		}
		if !slices.ContainsFunc(keys, func(e jose.JSONWebKey) bool { return e.KeyID == k.KeyID }) {
			keys = append(keys, k)
		}
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		return nil, err
	}
	a := &Asserter{
		signer: signer, audience: c.Audience, issuer: c.Issuer, ttl: c.TTL, top: c.Claim == ClaimTop,
		now: c.Now, jwks: jwks, kid: current.KeyID, cache: map[uint64]cachedAssertion{}, seed: maphash.MakeSeed(),
	}
	if a.ttl == 0 {
		a.ttl = DefaultAssertionTTL
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// JWKS returns the JSON Web Key Set of the current and fallback public
// keys, each with its RFC 7638 thumbprint as kid.
func (a *Asserter) JWKS() []byte { return a.jwks }

// Keys returns the public keys of the JWKS.
func (a *Asserter) Keys() []jose.JSONWebKey {
	var set jose.JSONWebKeySet
	_ = json.Unmarshal(a.jwks, &set)
	return set.Keys
}

// KeyID returns the kid of the signing key.
func (a *Asserter) KeyID() string { return a.kid }

// Sign returns the compact JWS of session, the session's JSON object as
// the upstream receives it in X-Session. sid is the session's ID in a
// server-side store ("" for cookie sessions): the assertion carries its
// SHA-256, never the ID. host is the request's host, the issuer unless one
// is configured.
func (a *Asserter) Sign(session []byte, sid, host string) (string, error) {
	return a.sign(string(session), sid, host)
}

// sign is Sign for the session header's value, as a string.
func (a *Asserter) sign(session, sid, host string) (string, error) {
	issuer := a.issuer
	if issuer == "" {
		issuer = host
	}
	// The cache key: a hash of every input of the claims, each but the
	// last prefixed with its length so that no two inputs run together.
	bp := keyBuffers.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, part := range [...]string{a.audience, issuer, sid} {
		buf = strconv.AppendInt(buf, int64(len(part)), 10)
		buf = append(buf, ':')
		buf = append(buf, part...)
	}
	buf = append(buf, session...)
	if len(buf) > maxCachedInput {
		// A large session is kept by its SHA-256; '#' never starts an
		// input, which starts with a length.
		sum := sha256.Sum256(buf)
		buf = append(append(buf[:0], '#'), sum[:]...)
	}
	defer func() {
		if cap(buf) <= 64<<10 {
			*bp = buf
			keyBuffers.Put(bp)
		}
	}()
	// The map is keyed by a fast seeded hash; an entry counts only when
	// its whole input is the same, so a collision is a miss, never
	// another session's assertion.
	key := maphash.Bytes(a.seed, buf)

	now := a.now()
	a.mu.Lock()
	e, ok := a.cache[key]
	a.mu.Unlock()
	if ok && e.input == string(buf) && now.Before(e.renewFrom) {
		return e.jws, nil
	}
	jws, err := a.make([]byte(session), sid, issuer, now)
	if err != nil {
		return "", err
	}
	entry := cachedAssertion{input: string(buf), jws: jws, renewFrom: now.Add(a.ttl / 2)}
	a.mu.Lock()
	if old, ok := a.cache[key]; ok {
		a.cacheBytes -= old.size()
		delete(a.cache, key)
	}
	if len(a.cache) >= assertionCacheSize || a.cacheBytes+entry.size() > assertionCacheBytes {
		for k, old := range a.cache {
			if !now.Before(old.renewFrom) {
				a.cacheBytes -= old.size()
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= assertionCacheSize || a.cacheBytes+entry.size() > assertionCacheBytes {
			clear(a.cache)
			a.cacheBytes = 0
		}
	}
	a.cache[key] = entry
	a.cacheBytes += entry.size()
	a.mu.Unlock()
	return jws, nil
}

// make signs a new assertion.
func (a *Asserter) make(session []byte, sid, issuer string, now time.Time) (string, error) {
	claims := map[string]json.RawMessage{}
	if a.top {
		if err := json.Unmarshal(session, &claims); err != nil {
			return "", fmt.Errorf("session is not a JSON object: %w", err)
		}
		// The claims the gateway sets win; the session's other keys,
		// sub and jti included, are the upstream's to read.
		for _, reserved := range []string{"iss", "aud", "iat", "exp"} {
			delete(claims, reserved)
		}
		if sid != "" {
			delete(claims, "sid")
		}
	} else {
		if !json.Valid(session) {
			return "", errors.New("session is not valid JSON")
		}
		claims[ClaimSession] = session
	}
	str := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	claims["iss"] = str(issuer)
	claims["aud"] = str(a.audience)
	claims["iat"] = json.RawMessage(strconv.FormatInt(now.Unix(), 10))
	// exp rounds up, so that an assertion is never valid for less than ttl.
	claims["exp"] = json.RawMessage(strconv.FormatInt(now.Add(a.ttl+time.Second-1).Unix(), 10))
	if sid != "" {
		claims["sid"] = str(HashSessionID(sid))
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := a.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing the session assertion: %w", err)
	}
	return obj.CompactSerialize()
}

// HashSessionID returns the sid claim of a session ID: its SHA-256,
// base64url without padding.
func HashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// PublicJWK returns the public JWK of pub, with its algorithm, "sig" use
// and RFC 7638 thumbprint (SHA-256) as kid. It refuses key types, curves
// and sizes assertions are not signed with.
func PublicJWK(pub crypto.PublicKey) (jose.JSONWebKey, error) {
	var alg jose.SignatureAlgorithm
	switch k := pub.(type) {
	case ed25519.PublicKey:
		alg = jose.EdDSA
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			alg = jose.ES256
		case elliptic.P384():
			alg = jose.ES384
		case elliptic.P521():
			alg = jose.ES512
		default:
			return jose.JSONWebKey{}, errors.New("unsupported elliptic curve: use P-256 (ES256) or Ed25519 (EdDSA)")
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSAKeyBits {
			return jose.JSONWebKey{}, fmt.Errorf("RSA key of %d bits is too short: at least %d", k.N.BitLen(), MinRSAKeyBits)
		}
		alg = jose.RS256
	default:
		return jose.JSONWebKey{}, fmt.Errorf("unsupported key type %T: use Ed25519 or ECDSA P-256", pub)
	}
	jwk := jose.JSONWebKey{Key: pub, Algorithm: string(alg), Use: "sig"}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	return jwk, nil
}

// ParseSigningKeyPEM reads the one private key of a PEM file (PKCS #8,
// SEC 1 "EC PRIVATE KEY" or PKCS #1 "RSA PRIVATE KEY") and checks that
// assertions can be signed with it. Errors never quote the file's content.
func ParseSigningKeyPEM(data []byte) (crypto.Signer, error) {
	var key crypto.Signer
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		k, err := parsePrivateBlock(block)
		if err != nil {
			return nil, err
		}
		if k == nil {
			continue // a certificate, parameters, a public key: skipped
		}
		if key != nil {
			return nil, errors.New("more than one private key")
		}
		key = k
	}
	if key == nil {
		return nil, errors.New("no PEM private key found")
	}
	if _, err := PublicJWK(key.Public()); err != nil {
		return nil, err
	}
	return key, nil
}

// ParsePublicKeysPEM reads every key of a PEM file of fallback keys:
// public keys (PKIX "PUBLIC KEY") or private ones, of which only the
// public half is kept.
func ParsePublicKeysPEM(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type == "PUBLIC KEY" {
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("key %d: unreadable public key", len(keys)+1)
			}
			keys = append(keys, pub)
			continue
		}
		k, err := parsePrivateBlock(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", len(keys)+1, err)
		}
		if k != nil {
			keys = append(keys, k.Public())
		}
	}
	for i, k := range keys {
		if _, err := PublicJWK(k); err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
	}
	return keys, nil
}

// parsePrivateBlock returns the private key of a PEM block, nil for a
// block of another kind.
func parsePrivateBlock(block *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("unreadable %s block (unsupported curve or malformed)", block.Type)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	return signer, nil
}

// assert sets the assertion header of a request from the session header
// Arrive set. A session that cannot be signed goes without one.
func (g *Gateway) assert(r *http.Request, s *Session) {
	jws, err := g.assertion.sign(r.Header[g.protocol.SessionHeader()][0], s.ID(), r.Host)
	if err != nil {
		g.logger.Error("session assertion not sent", zap.Error(err))
		return
	}
	r.Header[g.assertionName] = []string{jws}
}

// checkAssertionHeader refuses an assertion header that is not a valid
// name, is reserved, is one of the protocol's own named headers, or is a
// forwarded one.
func (g *Gateway) checkAssertionHeader(name string) error {
	if err := CheckForwardHeader(name); err != nil {
		return fmt.Errorf("sign_upstream header: %w", err)
	}
	p := g.protocol
	for _, own := range []string{p.SessionHeader(), p.StatusHeader(), p.IDHeader(), p.prefix + replaceSuffix, p.prefix + updateSuffix,
		p.prefix + renewSuffix, p.prefix + revokeSuffix, p.prefix + "-List"} {
		if SameHeaderName(own, name) {
			return fmt.Errorf("sign_upstream header: %s is one of the session's own headers", name)
		}
	}
	for _, f := range g.forward {
		if SameHeaderName(f.Header, name) {
			return fmt.Errorf("sign_upstream header: %s is also a forward header", name)
		}
	}
	return nil
}
