package sessioncore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// maxSealedValue bounds the work spent on a hostile value: no session
// split over the most cookie parts is longer.
const maxSealedValue = MaxCookieSize * maxPartIndex

// MinSecretLength is the shortest secret NewSecureCookieCodec accepts.
const MinSecretLength = 32

// HKDF info strings: one key for signing, one for encryption, both derived
// from the same secret, so a user configures one value.
const (
	hashKeyInfo  = "sessiongate securecookie v1 hmac-sha256"
	blockKeyInfo = "sessiongate securecookie v1 aes-256"
)

// Envelope versions: the first byte of the sealed payload, so the format
// can evolve without misreading older cookies.
const (
	// envelopeV1 holds the issue time, the creation time and the JSON.
	// Cookies of this kind are still read.
	envelopeV1 = 1
	// envelopeV2 holds the creation time and the JSON; the issue time is
	// securecookie's own authenticated timestamp. Reissuing an unchanged
	// session then only signs a new timestamp over the same ciphertext.
	envelopeV2 = 2
)

// Lengths of the two envelope headers: a version byte, then big-endian Unix
// times.
const (
	envelopeV1HeaderLen = 1 + 8 + 8
	envelopeV2HeaderLen = 1 + 8
)

// SecureCookieCodec is the default Codec. Its cookie values are exactly
// gorilla/securecookie's (v1.1.2) with a hash key and a block key:
//
//	base64url(date "|" base64url(iv ‖ AES-256-CTR(payload)) "|" HMAC-SHA256(name "|" date "|" value))
//
// that is, encrypt-then-MAC over the cookie name, a timestamp and the
// ciphertext, with the two keys of each secret derived by HKDF-SHA256 once,
// when the codec is made. The payload is a version byte, the issue and
// creation time, then the session's JSON; the securecookie timestamp is
// the issue time. The Manager's clock decides expiry from them.
//
// The format is gorilla/securecookie's and the tests prove that each side
// reads the other's cookies; the code is a lean implementation of it.
// gorilla's Encode and Decode of a 200-byte session take about 9 µs and 32
// allocations together (fmt.Sprintf, a new HMAC and fresh buffers on every
// call), more than the whole per-request budget of the gateway; here the
// HMAC states are pooled and every step writes into one buffer.
type SecureCookieCodec struct {
	keys []*sealKeys // current first, then fallbacks
}

// sealKeys are the derived keys of one secret.
type sealKeys struct {
	block cipher.Block
	macs  sync.Pool // of *macState: HMAC-SHA256 with the hash key
}

// macState is a pooled HMAC with room for its sum, which would otherwise
// escape to the heap through the hash.Hash interface.
type macState struct {
	hash.Hash
	sum [sha256.Size]byte
}

func (k *sealKeys) mac() *macState { return k.macs.Get().(*macState) }

func (k *sealKeys) release(m *macState) {
	m.Reset()
	k.macs.Put(m)
}

// SecureCookieCodecName is the default codec's name.
const SecureCookieCodecName = "securecookie"

func init() {
	RegisterCodec(CodecInfo{
		Name: SecureCookieCodecName,
		New: func(secret []byte, fallbacks ...[]byte) (Codec, error) {
			return NewSecureCookieCodec(secret, fallbacks...)
		},
		KeepsCreationTime: true,
	})
}

// NewSecureCookieCodec returns a codec that signs and encrypts with secret
// and also opens values made with any of fallbacks. Every secret must be at
// least MinSecretLength bytes. Errors never contain a secret.
func NewSecureCookieCodec(secret []byte, fallbacks ...[]byte) (*SecureCookieCodec, error) {
	all := append([][]byte{secret}, fallbacks...)
	c := &SecureCookieCodec{keys: make([]*sealKeys, 0, len(all))}
	for i, s := range all {
		if len(s) < MinSecretLength {
			return nil, fmt.Errorf("%s is %d bytes long; at least %d are required", secretName(i), len(s), MinSecretLength)
		}
		k, err := deriveSealKeys(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", secretName(i), err)
		}
		c.keys = append(c.keys, k)
	}
	return c, nil
}

func secretName(i int) string {
	if i == 0 {
		return "secret"
	}
	return fmt.Sprintf("fallback secret %d", i)
}

// deriveSealKeys derives the hash key and the block key of one secret.
func deriveSealKeys(secret []byte) (*sealKeys, error) {
	hashKey, blockKey, err := derivedKeys(secret)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(blockKey)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	k := &sealKeys{block: block}
	k.macs.New = func() any { return &macState{Hash: hmac.New(sha256.New, hashKey)} }
	return k, nil
}

// derivedKeys returns the HMAC key and the AES key of a secret.
func derivedKeys(secret []byte) (hashKey, blockKey []byte, err error) {
	if hashKey, err = hkdf.Key(sha256.New, secret, nil, hashKeyInfo, 32); err != nil {
		return nil, nil, fmt.Errorf("deriving signing key: %w", err)
	}
	if blockKey, err = hkdf.Key(sha256.New, secret, nil, blockKeyInfo, 32); err != nil {
		return nil, nil, fmt.Errorf("deriving encryption key: %w", err)
	}
	return hashKey, blockKey, nil
}

// scBase64 is the encoding securecookie uses: URL-safe, with padding.
var scBase64 = base64.URLEncoding

// scratch buffers for sealing and opening, reused across requests.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getScratch(n int) *[]byte {
	p := scratchPool.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, 0, n)
	}
	*p = (*p)[:n]
	return p
}

// Encode seals p with the current secret. When p.Sealed is set (by Decode,
// for an unchanged session), its ciphertext is reused and only the
// timestamp and the signature are new.
func (c *SecureCookieCodec) Encode(name string, p Payload) (string, error) {
	k := c.keys[0]
	var date [20]byte
	dateText := strconv.AppendInt(date[:0], p.Issued.Unix(), 10)
	valueLen := len(p.Sealed)
	if p.Sealed == nil {
		valueLen = scBase64.EncodedLen(aes.BlockSize + envelopeV2HeaderLen + len(p.JSON))
	}

	// name "|" date "|" value "|" mac
	msgBuf := getScratch(len(name) + 1 + len(dateText) + 1 + valueLen + 1 + sha256.Size)
	defer scratchPool.Put(msgBuf)
	msg := (*msgBuf)[:0]
	msg = append(msg, name...)
	msg = append(msg, '|')
	msg = append(msg, dateText...)
	msg = append(msg, '|')
	if p.Sealed != nil {
		msg = append(msg, p.Sealed...)
	} else {
		var err error
		if msg, err = k.appendSealed(msg, p); err != nil {
			return "", err
		}
	}
	mac := k.mac()
	mac.Write(msg)
	msg = append(msg, '|')
	msg = mac.Sum(msg)
	k.release(mac)

	// base64(date "|" value "|" mac): the name is authenticated, not sent.
	signed := msg[len(name)+1:]
	out := make([]byte, scBase64.EncodedLen(len(signed)))
	scBase64.Encode(out, signed)
	// out is never written again, so it can back the string directly.
	return unsafe.String(&out[0], len(out)), nil
}

// appendSealed appends securecookie's value: base64(iv ‖ AES-CTR(envelope)).
func (k *sealKeys) appendSealed(dst []byte, p Payload) ([]byte, error) {
	const ivLen = aes.BlockSize
	rawBuf := getScratch(ivLen + envelopeV2HeaderLen + len(p.JSON))
	defer scratchPool.Put(rawBuf)
	raw := *rawBuf
	if _, err := rand.Read(raw[:ivLen]); err != nil {
		return nil, fmt.Errorf("encoding session cookie: %w", err)
	}
	env := raw[ivLen:]
	env[0] = envelopeV2
	binary.BigEndian.PutUint64(env[1:9], uint64(p.Created.Unix()))
	copy(env[envelopeV2HeaderLen:], p.JSON)
	cipher.NewCTR(k.block, raw[:ivLen]).XORKeyStream(env, env)
	return scBase64.AppendEncode(dst, raw), nil
}

// Decode opens value with the current secret or, failing that, a fallback.
func (c *SecureCookieCodec) Decode(name, value string) (Payload, int, error) {
	if len(value) > maxSealedValue {
		return Payload{}, 0, ErrBadSignature // we never issue one this long
	}
	// Nothing is allocated before the value is authenticated: forged
	// cookies cost no garbage.
	decodedBuf := getScratch(scBase64.DecodedLen(len(value)))
	defer scratchPool.Put(decodedBuf)
	n, err := scBase64.Decode(*decodedBuf, unsafe.Slice(unsafe.StringData(value), len(value)))
	if err != nil {
		return Payload{}, 0, ErrBadSignature
	}
	b := (*decodedBuf)[:n]

	// date "|" value "|" mac; the mac may itself contain '|'.
	first := bytes.IndexByte(b, '|')
	if first < 0 {
		return Payload{}, 0, ErrBadSignature
	}
	second := bytes.IndexByte(b[first+1:], '|')
	if second < 0 {
		return Payload{}, 0, ErrBadSignature
	}
	second += first + 1
	signed, sig := b[:second], b[second+1:]
	keyIndex := -1
	for i, k := range c.keys {
		if k.verify(name, signed, sig) {
			keyIndex = i
			break
		}
	}
	if keyIndex < 0 {
		return Payload{}, 0, ErrBadSignature
	}
	issued, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(b), first), 10, 64)
	if err != nil {
		return Payload{}, keyIndex, fmt.Errorf("%w: bad timestamp", ErrUndecodable)
	}

	// One allocation holds what the session keeps: the sealed value, to
	// reissue it unchanged, and after it the opened envelope.
	sealedLen := second - first - 1
	buf := make([]byte, sealedLen+scBase64.DecodedLen(sealedLen))
	sealed := buf[:sealedLen:sealedLen]
	copy(sealed, b[first+1:second])
	raw := buf[sealedLen:]
	m, err := scBase64.Decode(raw, sealed)
	if err != nil || m <= aes.BlockSize {
		return Payload{}, keyIndex, fmt.Errorf("%w: bad ciphertext", ErrUndecodable)
	}
	raw = raw[:m]
	env := raw[aes.BlockSize:]
	cipher.NewCTR(c.keys[keyIndex].block, raw[:aes.BlockSize]).XORKeyStream(env, env)
	p, err := openEnvelope(env, time.Unix(issued, 0))
	if err == nil && keyIndex == 0 && env[0] == envelopeV2 {
		// Only a value under the current key, whose envelope does not
		// hold the issue time, can be reissued as it is.
		p.Sealed = sealed
	}
	return p, keyIndex, err
}

var pipe = []byte{'|'}

// verify checks the HMAC of name "|" signed against sig.
func (k *sealKeys) verify(name string, signed, sig []byte) bool {
	mac := k.mac()
	defer k.release(mac)
	mac.Write(unsafe.Slice(unsafe.StringData(name), len(name)))
	mac.Write(pipe)
	mac.Write(signed)
	return hmac.Equal(mac.Sum(mac.sum[:0]), sig)
}

// openEnvelope reads an opened envelope. issued is securecookie's
// timestamp, which a version 1 envelope overrides with its own.
func openEnvelope(env []byte, issued time.Time) (Payload, error) {
	switch {
	case len(env) >= envelopeV2HeaderLen && env[0] == envelopeV2:
		return Payload{
			Issued:     issued,
			Created:    time.Unix(int64(binary.BigEndian.Uint64(env[1:9])), 0),
			JSON:       env[envelopeV2HeaderLen:],
			Normalized: true,
		}, nil
	case len(env) >= envelopeV1HeaderLen && env[0] == envelopeV1:
		return Payload{
			Issued:     time.Unix(int64(binary.BigEndian.Uint64(env[1:9])), 0),
			Created:    time.Unix(int64(binary.BigEndian.Uint64(env[9:17])), 0),
			JSON:       env[envelopeV1HeaderLen:],
			Normalized: true,
		}, nil
	}
	return Payload{}, fmt.Errorf("%w: unknown envelope", ErrUndecodable)
}

var _ Codec = (*SecureCookieCodec)(nil)
