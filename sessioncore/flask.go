package sessioncore

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// flaskSalt is the salt of Flask's SecureCookieSessionInterface.
const flaskSalt = "cookie-session"

// FlaskCodec reads and writes the very cookie a Flask app with the same
// SECRET_KEY uses: itsdangerous's URLSafeTimedSerializer with the salt
// "cookie-session", HMAC key derivation and SHA-1, a timestamp signer, and
// URL-safe base64 without padding; the payload is zlib-compressed (with a
// leading '.') when that makes it shorter, as Flask does.
//
// Values are kept in Flask's tagged JSON; FlaskCodec also converts them to
// and from the plain JSON the upstream reads and writes (see FlaskTags).
type FlaskCodec struct {
	FlaskTags
	keys []*sync.Pool // HMAC-SHA1 with each derived key: current first, then fallbacks
}

// FlaskCodecName is the name of the codec of Flask's own session cookie.
const FlaskCodecName = "flask"

func init() {
	RegisterCodec(CodecInfo{
		Name:            FlaskCodecName,
		New:             func(secret []byte, fallbacks ...[]byte) (Codec, error) { return NewFlaskCodec(secret, fallbacks...) },
		SharedWithApp:   true,
		AnySecretLength: true,
	})
}

// NewFlaskCodec returns a codec that signs with secret (Flask's SECRET_KEY)
// and also opens cookies signed with any of fallbacks (SECRET_KEY_FALLBACKS).
// Flask accepts any non-empty key, and so does this; short keys are weak
// (hashcat brute-forces Flask secrets), which callers should point out.
func NewFlaskCodec(secret []byte, fallbacks ...[]byte) (*FlaskCodec, error) {
	c := &FlaskCodec{}
	for i, s := range append([][]byte{secret}, fallbacks...) {
		if len(s) == 0 {
			return nil, fmt.Errorf("%s is empty", secretName(i))
		}
		mac := hmac.New(sha1.New, s)
		mac.Write([]byte(flaskSalt))
		derived := mac.Sum(nil)
		c.keys = append(c.keys, &sync.Pool{New: func() any { return hmac.New(sha1.New, derived) }})
	}
	return c, nil
}

var b64 = base64.RawURLEncoding

// Encode signs p.JSON with the current secret and p.Issued as timestamp.
// Created is not part of Flask's format and is dropped. When p.Sealed is
// set (by Decode, for an unchanged session), it is reused as the payload,
// compressed or not, and only the timestamp and the signature are new.
func (c *FlaskCodec) Encode(name string, p Payload) (string, error) {
	payload := p.Sealed
	if payload == nil {
		payload = flaskPayload(escapeTopLevelTag(p.JSON))
	}
	// payload "." timestamp "." signature
	ts := timestampBytes(p.Issued.Unix())
	out := make([]byte, 0, len(payload)+1+b64.EncodedLen(len(ts))+1+b64.EncodedLen(sha1.Size))
	out = append(out, payload...)
	out = append(out, '.')
	out = b64.AppendEncode(out, ts)
	var sum [sha1.Size]byte
	sig := c.sign(c.keys[0], out, sum[:])
	out = append(out, '.')
	out = b64.AppendEncode(out, sig)
	// out is never written again, so it can back the string directly.
	return unsafe.String(unsafe.SliceData(out), len(out)), nil
}

// flaskPayload is the first part of a Flask cookie: the session's JSON in
// URL-safe base64, zlib-compressed and marked with a leading '.' when that
// is shorter.
func flaskPayload(text []byte) []byte {
	if compressed := Deflate(text); len(compressed) < len(text)-1 {
		return b64.AppendEncode([]byte{'.'}, compressed)
	}
	return b64.AppendEncode(nil, text)
}

// sign returns the HMAC-SHA1 of signed with one derived key, into sum.
func (c *FlaskCodec) sign(key *sync.Pool, signed []byte, sum []byte) []byte {
	mac := key.Get().(hash.Hash)
	mac.Write(signed)
	sum = mac.Sum(sum[:0])
	mac.Reset()
	key.Put(mac)
	return sum
}

// Decode verifies value's signature with the current secret, then the
// fallbacks, and opens its payload. A value whose signature verifies but
// whose timestamp is missing or malformed is a bad signature, as in
// itsdangerous; one whose payload cannot be inflated or decoded is
// undecodable.
func (c *FlaskCodec) Decode(name, value string) (Payload, int, error) {
	if len(value) > MaxCookieSize {
		return Payload{}, 0, ErrBadSignature
	}
	dot := strings.LastIndexByte(value, '.')
	if dot < 0 {
		return Payload{}, 0, ErrBadSignature
	}
	signed := value[:dot]
	var sig, sum [sha1.Size]byte
	encodedSig := value[dot+1:]
	if b64.DecodedLen(len(encodedSig)) != sha1.Size {
		return Payload{}, 0, ErrBadSignature // Decode would overrun sig (found by FuzzFlaskOpen)
	}
	if n, err := b64.Decode(sig[:], []byte(encodedSig)); err != nil || n != sha1.Size {
		return Payload{}, 0, ErrBadSignature
	}
	keyIndex := -1
	for i, key := range c.keys {
		if hmac.Equal(c.sign(key, unsafe.Slice(unsafe.StringData(signed), len(signed)), sum[:]), sig[:]) {
			keyIndex = i
			break
		}
	}
	if keyIndex < 0 {
		return Payload{}, 0, ErrBadSignature
	}
	dot = strings.LastIndexByte(signed, '.')
	if dot < 0 {
		return Payload{}, keyIndex, fmt.Errorf("%w: timestamp missing", ErrBadSignature)
	}
	ts, err := b64.DecodeString(signed[dot+1:])
	if err != nil || len(ts) > 8 {
		return Payload{}, keyIndex, fmt.Errorf("%w: malformed timestamp", ErrBadSignature)
	}
	var seconds int64
	for _, b := range ts {
		seconds = seconds<<8 | int64(b)
	}
	text, err := inflatePayload(signed[:dot])
	if err != nil {
		return Payload{}, keyIndex, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	// The payload does not depend on the key, so it can be reissued under
	// the current one as it is.
	sealed := signed[:dot]
	return Payload{
		JSON:   unescapeTopLevelTag(text),
		Issued: time.Unix(seconds, 0),
		Sealed: unsafe.Slice(unsafe.StringData(sealed), len(sealed)),
	}, keyIndex, nil
}

// escapeTopLevelTag wraps a session whose only key is a tag key as
// {" di": {"<key>__": value}}, as Flask's tagger does for any such dict,
// the session itself included.
func escapeTopLevelTag(session []byte) []byte {
	var members map[string]json.RawMessage
	if !bytes.HasPrefix(session, tagMarker) || json.Unmarshal(session, &members) != nil || len(members) != 1 {
		return session
	}
	for k, v := range members {
		if isTagKey(k) {
			return appendObject(nil, map[string]json.RawMessage{tagDict: appendObject(nil, map[string]json.RawMessage{k + "__": v})})
		}
	}
	return session
}

// unescapeTopLevelTag undoes escapeTopLevelTag. Only " di" can tag the
// session object; any other one-key object is left for the JSON check.
func unescapeTopLevelTag(session []byte) []byte {
	var members map[string]json.RawMessage
	if !bytes.HasPrefix(session, tagMarker) || json.Unmarshal(session, &members) != nil || len(members) != 1 {
		return session
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(members[tagDict], &inner); err != nil || len(inner) != 1 {
		return session
	}
	unescaped := map[string]json.RawMessage{}
	for k, v := range inner {
		unescaped[k[:max(len(k)-2, 0)]] = v
	}
	return appendObject(nil, unescaped)
}

// inflatePayload decodes the base64 payload, inflating it when it starts
// with '.'.
func inflatePayload(payload string) ([]byte, error) {
	compressed := strings.HasPrefix(payload, ".")
	raw, err := b64.DecodeString(strings.TrimPrefix(payload, "."))
	if err != nil {
		return nil, errors.New("payload is not base64")
	}
	if !compressed {
		return raw, nil
	}
	return Inflate(raw)
}

// timestampBytes is itsdangerous's int_to_bytes: big-endian, without
// leading zero bytes.
func timestampBytes(n int64) []byte {
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = byte(n)
		n >>= 8
	}
	i := 0
	for i < 8 && b[i] == 0 {
		i++
	}
	return b[i:]
}

var _ Codec = (*FlaskCodec)(nil)
