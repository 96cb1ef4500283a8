// Package django is the codec of Django's signed_cookies session backend
// (SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"), so
// the gateway and a Django app with the same SECRET_KEY share one session
// cookie. It registers itself as "django".
//
// The cookie is django.core.signing.dumps(session, salt=Salt,
// compress=True, serializer=JSONSerializer):
//
//	payload ":" timestamp ":" signature
//
// where payload is the session as compact, ASCII-escaped JSON in URL-safe
// base64 without padding, zlib-compressed and marked with a leading '.'
// when that is shorter; timestamp is the issue time in seconds, in Django's
// base 62; and signature is the URL-safe base64 of
// HMAC-SHA256(key, payload ":" timestamp) with key =
// SHA256(Salt + "signer" + SECRET_KEY), Django's salted_hmac. Django 3.2
// also reads the SHA-1 signatures of Django 3.0 and earlier (and of
// DEFAULT_HASHING_ALGORITHM = "sha1"), and so does this codec.
package django

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/sessiongate/caddy-session/sessioncore"
)

const (
	// Name is the codec's name in a configuration (codec django).
	Name = "django"
	// Salt is the signed_cookies backend's salt.
	Salt = "django.contrib.sessions.backends.signed_cookies"
	// DefaultCookieName is Django's SESSION_COOKIE_NAME.
	DefaultCookieName = "sessionid"
	// ExpiryKey is the session key of SessionBase.set_expiry.
	ExpiryKey = "_session_expiry"
)

func init() {
	sessioncore.RegisterCodec(sessioncore.CodecInfo{
		Name:              Name,
		New:               func(secret []byte, fallbacks ...[]byte) (sessioncore.Codec, error) { return New(secret, fallbacks...) },
		SharedWithApp:     true,
		AnySecretLength:   true,
		DefaultCookieName: DefaultCookieName,
	})
}

// Codec reads and writes the cookie of Django's signed_cookies session
// backend. It writes HMAC-SHA256 signatures under the current key and
// reads those and legacy HMAC-SHA1 ones under every key.
type Codec struct {
	keys []key // current first, then fallbacks
}

// key is one secret's two derived HMACs.
type key struct {
	sha256, sha1 *sync.Pool
}

// New returns a codec that signs with secret (Django's SECRET_KEY) and also
// opens cookies signed with any of fallbacks (SECRET_KEY_FALLBACKS, Django
// 4.1 and later). Django accepts any non-empty SECRET_KEY, and so does this.
func New(secret []byte, fallbacks ...[]byte) (*Codec, error) {
	c := &Codec{}
	for i, s := range append([][]byte{secret}, fallbacks...) {
		if len(s) == 0 {
			if i == 0 {
				return nil, errors.New("secret is empty")
			}
			return nil, fmt.Errorf("fallback secret %d is empty", i)
		}
		c.keys = append(c.keys, key{sha256: hmacPool(sha256.New, s), sha1: hmacPool(sha1.New, s)})
	}
	return c, nil
}

// hmacPool returns a pool of salted_hmac(Salt + "signer", ·, secret)
// hashes: HMAC with the key hash(Salt + "signer" + secret).
func hmacPool(h func() hash.Hash, secret []byte) *sync.Pool {
	d := h()
	d.Write([]byte(Salt + "signer"))
	d.Write(secret)
	derived := d.Sum(nil)
	return &sync.Pool{New: func() any { return hmac.New(h, derived) }}
}

var b64 = base64.RawURLEncoding

// Encoded lengths of the two signatures.
var (
	sha256SigLen = b64.EncodedLen(sha256.Size)
	sha1SigLen   = b64.EncodedLen(sha1.Size)
)

// Encode signs p.JSON with the current secret and p.Issued as timestamp.
// Created is not part of Django's format and is dropped. When p.Sealed is
// set (by Decode, for an unchanged session), it is reused as the payload,
// compressed or not: only the timestamp and the signature are new.
func (c *Codec) Encode(name string, p sessioncore.Payload) (string, error) {
	payload := p.Sealed
	if payload == nil {
		payload = encodePayload(p.JSON)
	}
	out := make([]byte, 0, len(payload)+1+11+1+sha256SigLen)
	out = append(out, payload...)
	out = append(out, ':')
	out = appendBase62(out, p.Issued.Unix())
	var sum [sha256.Size]byte
	sig := sign(c.keys[0].sha256, out, sum[:0])
	out = append(out, ':')
	out = b64.AppendEncode(out, sig)
	// out is never written again, so it can back the string directly.
	return unsafe.String(unsafe.SliceData(out), len(out)), nil
}

// encodePayload is the first part of the cookie: the JSON in URL-safe
// base64, zlib-compressed and marked with '.' when that is shorter by more
// than a byte, as Signer.sign_object does.
func encodePayload(text []byte) []byte {
	if compressed := sessioncore.Deflate(text); len(compressed) < len(text)-1 {
		return b64.AppendEncode([]byte{'.'}, compressed)
	}
	return b64.AppendEncode(nil, text)
}

// sign appends the HMAC of signed under one derived key to sum.
func sign(pool *sync.Pool, signed []byte, sum []byte) []byte {
	mac := pool.Get().(hash.Hash)
	mac.Write(signed)
	sum = mac.Sum(sum)
	mac.Reset()
	pool.Put(mac)
	return sum
}

// Decode verifies value's signature with the current secret, then the
// fallbacks, and opens its payload. As in Django, the signature is compared
// as the text Django would write (so only its exact base64 verifies), a
// SHA-256 one or a legacy SHA-1 one by its length; a value that verifies but
// has no timestamp, or a malformed one, is a bad signature; one whose
// payload is not base64, zlib or JSON is undecodable.
func (c *Codec) Decode(name, value string) (sessioncore.Payload, int, error) {
	if len(value) > sessioncore.MaxCookieSize {
		return sessioncore.Payload{}, 0, sessioncore.ErrBadSignature
	}
	colon := strings.LastIndexByte(value, ':')
	if colon < 0 {
		return sessioncore.Payload{}, 0, sessioncore.ErrBadSignature
	}
	signed := unsafe.Slice(unsafe.StringData(value), colon)
	sig := value[colon+1:]
	var pick func(key) *sync.Pool
	switch len(sig) {
	case sha256SigLen:
		pick = func(k key) *sync.Pool { return k.sha256 }
	case sha1SigLen:
		pick = func(k key) *sync.Pool { return k.sha1 }
	default:
		return sessioncore.Payload{}, 0, sessioncore.ErrBadSignature
	}
	keyIndex := -1
	var sum [sha256.Size]byte
	var expected [43]byte // the longer, SHA-256 signature's text
	for i, k := range c.keys {
		mine := b64.AppendEncode(expected[:0], sign(pick(k), signed, sum[:0]))
		if hmac.Equal(mine, unsafe.Slice(unsafe.StringData(sig), len(sig))) {
			keyIndex = i
			break
		}
	}
	if keyIndex < 0 {
		return sessioncore.Payload{}, 0, sessioncore.ErrBadSignature
	}
	body := value[:colon]
	colon = strings.LastIndexByte(body, ':')
	if colon < 0 {
		return sessioncore.Payload{}, keyIndex, fmt.Errorf("%w: timestamp missing", sessioncore.ErrBadSignature)
	}
	seconds, ok := parseBase62(body[colon+1:])
	if !ok {
		return sessioncore.Payload{}, keyIndex, fmt.Errorf("%w: malformed timestamp", sessioncore.ErrBadSignature)
	}
	payload := body[:colon]
	text, err := decodePayload(payload)
	if err != nil {
		return sessioncore.Payload{}, keyIndex, fmt.Errorf("%w: %w", sessioncore.ErrUndecodable, err)
	}
	// The payload does not depend on the key, so it is reissued under the
	// current one as it is.
	return sessioncore.Payload{
		JSON:   text,
		Issued: time.Unix(seconds, 0),
		Sealed: unsafe.Slice(unsafe.StringData(payload), len(payload)),
	}, keyIndex, nil
}

// decodePayload decodes the base64 payload, inflating it when it starts
// with '.'. JSONSerializer reads the bytes as Latin-1, so any byte above
// 0x7f (Django never writes one) is the character of that code point.
func decodePayload(payload string) ([]byte, error) {
	compressed := strings.HasPrefix(payload, ".")
	raw, err := b64.DecodeString(strings.TrimPrefix(payload, "."))
	if err != nil {
		return nil, errors.New("payload is not base64")
	}
	if compressed {
		if raw, err = sessioncore.Inflate(raw); err != nil {
			return nil, err
		}
	}
	return latin1ToUTF8(raw), nil
}

// latin1ToUTF8 returns b read as Latin-1, in UTF-8: b itself when it is
// ASCII.
func latin1ToUTF8(b []byte) []byte {
	i := 0
	for i < len(b) && b[i] < utf8.RuneSelf {
		i++
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, i, len(b)+len(b)/2)
	copy(out, b)
	for _, c := range b[i:] {
		out = utf8.AppendRune(out, rune(c))
	}
	return out
}

// base62 is the alphabet of django.utils.baseconv.base62 (Django 3.2) and
// of django.core.signing.b62_encode (4.0 and later).
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// appendBase62 appends n in Django's base 62, with a leading '-' when it
// is negative.
func appendBase62(out []byte, n int64) []byte {
	if n == 0 {
		return append(out, '0')
	}
	u := uint64(n)
	if n < 0 {
		out = append(out, '-')
		u = -u
	}
	var digits [11]byte
	i := len(digits)
	for u > 0 {
		i--
		digits[i] = base62[u%62]
		u /= 62
	}
	return append(out, digits[i:]...)
}

// parseBase62 reads a timestamp as Django does (an optional '-', then at
// least one base-62 digit), refusing one beyond an int64.
func parseBase62(s string) (int64, bool) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(base62, s[i])
		if d < 0 || n > (1<<63-1-uint64(d))/62 {
			return 0, false
		}
		n = n*62 + uint64(d)
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

var (
	_ sessioncore.Codec        = (*Codec)(nil)
	_ sessioncore.CookieExpiry = (*Codec)(nil)
)
