package sessioncore

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gorilla/securecookie"
)

// MinSecretLength is the shortest secret NewSecureCookieCodec accepts.
const MinSecretLength = 32

// HKDF info strings: one key for signing, one for encryption, both derived
// from the same secret, so a user configures one value.
const (
	hashKeyInfo  = "sessiongate securecookie v1 hmac-sha256"
	blockKeyInfo = "sessiongate securecookie v1 aes-256"
)

// envelopeVersion is the first byte of the sealed payload, so the format can
// evolve without misreading older cookies.
const envelopeVersion = 1

// envelopeHeaderLen is the version byte and two big-endian Unix times
// (issued, created) that precede the session's JSON.
const envelopeHeaderLen = 1 + 8 + 8

// SecureCookieCodec is the default Codec: gorilla/securecookie with
// AES-256-CTR encryption and an HMAC-SHA256 over the cookie name, a
// timestamp and the ciphertext (encrypt-then-MAC). The two keys of each
// secret are derived with HKDF-SHA256 once, when the codec is made.
//
// The sealed payload is a version byte, the issue and creation times, then
// the session's JSON; securecookie's own timestamp check is turned off so
// that the Interface's injectable clock decides expiry.
type SecureCookieCodec struct {
	codecs []*securecookie.SecureCookie // current first, then fallbacks
}

// NewSecureCookieCodec returns a codec that signs and encrypts with secret
// and also opens values made with any of fallbacks. Every secret must be at
// least MinSecretLength bytes. Errors never contain a secret.
func NewSecureCookieCodec(secret []byte, fallbacks ...[]byte) (*SecureCookieCodec, error) {
	all := append([][]byte{secret}, fallbacks...)
	c := &SecureCookieCodec{codecs: make([]*securecookie.SecureCookie, 0, len(all))}
	for i, s := range all {
		if len(s) < MinSecretLength {
			return nil, fmt.Errorf("%s is %d bytes long; at least %d are required", secretName(i), len(s), MinSecretLength)
		}
		sc, err := newGorillaCodec(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", secretName(i), err)
		}
		c.codecs = append(c.codecs, sc)
	}
	return c, nil
}

func secretName(i int) string {
	if i == 0 {
		return "secret"
	}
	return fmt.Sprintf("fallback secret %d", i)
}

func newGorillaCodec(secret []byte) (*securecookie.SecureCookie, error) {
	hashKey, err := hkdf.Key(sha256.New, secret, nil, hashKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving signing key: %w", err)
	}
	blockKey, err := hkdf.Key(sha256.New, secret, nil, blockKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving encryption key: %w", err)
	}
	sc := securecookie.New(hashKey, blockKey).
		SetSerializer(securecookie.NopEncoder{}).
		MaxAge(0).   // expiry is the Interface's job, with its clock
		MaxLength(0) // Interface.Save enforces the limit on the whole Set-Cookie line
	return sc, nil
}

// Encode seals p with the current secret.
func (c *SecureCookieCodec) Encode(name string, p Payload) (string, error) {
	sealed := make([]byte, envelopeHeaderLen, envelopeHeaderLen+len(p.JSON))
	sealed[0] = envelopeVersion
	binary.BigEndian.PutUint64(sealed[1:9], uint64(p.Issued.Unix()))
	binary.BigEndian.PutUint64(sealed[9:17], uint64(p.Created.Unix()))
	sealed = append(sealed, p.JSON...)
	value, err := c.codecs[0].Encode(name, sealed)
	if err != nil {
		return "", fmt.Errorf("encoding session cookie: %w", err)
	}
	return value, nil
}

// Decode opens value with the current secret or, failing that, a fallback.
func (c *SecureCookieCodec) Decode(name, value string) (Payload, int, error) {
	if len(value) > MaxCookieSize {
		return Payload{}, 0, ErrBadSignature // we never issue one this long
	}
	for i, sc := range c.codecs {
		var sealed []byte
		if err := sc.Decode(name, value, &sealed); err != nil {
			continue // not this key; securecookie checks the MAC first
		}
		p, err := openEnvelope(sealed)
		return p, i, err
	}
	return Payload{}, 0, ErrBadSignature
}

func openEnvelope(sealed []byte) (Payload, error) {
	if len(sealed) < envelopeHeaderLen || sealed[0] != envelopeVersion {
		return Payload{}, fmt.Errorf("%w: unknown envelope", ErrUndecodable)
	}
	return Payload{
		Issued:  time.Unix(int64(binary.BigEndian.Uint64(sealed[1:9])), 0),
		Created: time.Unix(int64(binary.BigEndian.Uint64(sealed[9:17])), 0),
		JSON:    sealed[envelopeHeaderLen:],
	}, nil
}

var _ Codec = (*SecureCookieCodec)(nil)
