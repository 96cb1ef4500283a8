// Package cookiesession is the codec of Express's cookie-session
// middleware (npm cookie-session, with its cookies and keygrip), so the
// gateway and an Express app with the same keys share one session. It
// registers itself as "cookie-session".
//
// The session is two cookies. <name> holds the session as JSON
// (JSON.stringify) in standard base64 with padding (Node's
// Buffer.toString("base64")); <name>.sig holds keygrip's signature of the
// text "<name>=<value>": HMAC-SHA1 (keygrip's default) under the first key,
// in base64 with '/' as '_', '+' as '-' and no '=' (URL-safe base64
// without padding). Reading, every key is tried in turn, and the signature
// must be that text exactly (keygrip compares the strings). The value
// carries no time: the codec (see sessioncore.SignedPair) gives the
// Manager a zero issue time, so a value that verifies is taken as issued
// now, and the cookie lasts as long as the browser keeps it, as in Express.
package cookiesession

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"unsafe"

	"github.com/sessiongate/caddy-session/sessioncore"
)

const (
	// Name is the codec's name in a configuration (codec cookie-session).
	Name = "cookie-session"
	// DefaultCookieName is cookie-session's default name option.
	DefaultCookieName = "session"
	// SignatureSuffix names the signature cookie: <name>.sig, as the
	// cookies package names it.
	SignatureSuffix = ".sig"
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

// Codec reads and writes cookie-session's pair of cookies.
type Codec struct {
	keys []*sync.Pool // HMAC-SHA1 under each key: the current one first
}

// New returns a codec that signs with secret (the first of
// cookie-session's keys) and also opens cookies signed with any of
// fallbacks (the keys after it, in order). keygrip takes any key; an empty
// one is refused all the same.
func New(secret []byte, fallbacks ...[]byte) (*Codec, error) {
	c := &Codec{}
	for i, s := range append([][]byte{secret}, fallbacks...) {
		if len(s) == 0 {
			if i == 0 {
				return nil, errors.New("secret is empty")
			}
			return nil, fmt.Errorf("fallback secret %d is empty", i)
		}
		key := bytes.Clone(s)
		c.keys = append(c.keys, &sync.Pool{New: func() any { return hmac.New(sha1.New, key) }})
	}
	return c, nil
}

// SignatureCookie is the cookie of the signature: <name>.sig.
func (c *Codec) SignatureCookie(name string) string { return name + SignatureSuffix }

// sigLen is the length of keygrip's SHA-1 signature text.
var sigLen = base64.RawURLEncoding.EncodedLen(sha1.Size)

// appendSignature appends keygrip's signature of "name=value" under key.
func appendSignature(out []byte, key *sync.Pool, name, value string) []byte {
	mac := key.Get().(hash.Hash)
	mac.Write(unsafe.Slice(unsafe.StringData(name), len(name)))
	mac.Write([]byte{'='})
	mac.Write(unsafe.Slice(unsafe.StringData(value), len(value)))
	var sum [sha1.Size]byte
	mac.Sum(sum[:0])
	mac.Reset()
	key.Put(mac)
	return base64.RawURLEncoding.AppendEncode(out, sum[:])
}

// Encode returns the value of p.JSON and its signature under the current
// key, joined by sessioncore.PairSeparator. When p.Sealed is set (by
// Decode, for an unchanged session), it is the value, reused as it is: the
// app's own bytes come back. The times are not part of the format.
func (c *Codec) Encode(name string, p sessioncore.Payload) (string, error) {
	n := base64.StdEncoding.EncodedLen(len(p.JSON))
	if p.Sealed != nil {
		n = len(p.Sealed)
	}
	out := make([]byte, 0, n+len(sessioncore.PairSeparator)+sigLen)
	if p.Sealed != nil {
		out = append(out, p.Sealed...)
	} else {
		out = base64.StdEncoding.AppendEncode(out, p.JSON)
	}
	value := unsafe.String(unsafe.SliceData(out), len(out))
	out = append(out, sessioncore.PairSeparator...)
	out = appendSignature(out, c.keys[0], name, value)
	// out is never written again, so it can back the string directly.
	return unsafe.String(unsafe.SliceData(out), len(out)), nil
}

// Decode verifies the signature of the pair's value with the current key,
// then the fallbacks, as cookies.get does with keygrip's index: only the
// exact signature text verifies, and a missing or empty one never does.
// The value is then read as Node reads it: base64 in either alphabet,
// padded or not, as UTF-8 (invalid bytes become U+FFFD); a value that is
// not base64 or not a JSON object is undecodable.
func (c *Codec) Decode(name, sealed string) (sessioncore.Payload, int, error) {
	value, sig, ok := sessioncore.SplitPair(sealed)
	if !ok || len(sig) != sigLen || len(value) > sessioncore.MaxCookieSize {
		return sessioncore.Payload{}, 0, sessioncore.ErrBadSignature
	}
	keyIndex := -1
	var expected [32]byte
	for i, k := range c.keys {
		if hmac.Equal(appendSignature(expected[:0], k, name, value), unsafe.Slice(unsafe.StringData(sig), len(sig))) {
			keyIndex = i
			break
		}
	}
	if keyIndex < 0 {
		return sessioncore.Payload{}, 0, sessioncore.ErrBadSignature
	}
	text, err := decodeValue(value)
	if err != nil {
		return sessioncore.Payload{}, keyIndex, fmt.Errorf("%w: %w", sessioncore.ErrUndecodable, err)
	}
	// The value does not depend on the key, so it is reissued as it is.
	return sessioncore.Payload{JSON: text, Sealed: unsafe.Slice(unsafe.StringData(value), len(value))}, keyIndex, nil
}

// decodeValue reads the value as Buffer.from(value, "base64").toString()
// does for what a base64 encoder writes, in either alphabet.
func decodeValue(value string) ([]byte, error) {
	trimmed := strings.TrimRight(value, "=")
	if strings.ContainsAny(trimmed, "-_") {
		trimmed = strings.NewReplacer("-", "+", "_", "/").Replace(trimmed)
	}
	text, err := base64.RawStdEncoding.DecodeString(trimmed)
	if err != nil {
		return nil, errors.New("the value is not base64")
	}
	text = bytes.ToValidUTF8(text, []byte("\uFFFD"))
	if t := bytes.TrimLeft(text, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("the value is not a JSON object")
	}
	return text, nil
}

// Timeless implements sessioncore.Timeless: the cookie carries no time, so
// per-user revocation cannot apply to it.
func (c *Codec) Timeless() bool { return true }
