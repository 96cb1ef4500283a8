package sessioncore

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// flaskSalt is the salt of Flask's SecureCookieSessionInterface.
const flaskSalt = "cookie-session"

// maxInflatedPayload bounds how much a compressed Flask cookie may inflate
// to. A cookie of 4 KB cannot honestly hold more; a zlib bomb is refused.
const maxInflatedPayload = 256 << 10

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
// Created is not part of Flask's format and is dropped.
func (c *FlaskCodec) Encode(name string, p Payload) (string, error) {
	text := escapeTopLevelTag(p.JSON)
	var payload string
	if compressed := deflate(text); len(compressed) < len(text)-1 {
		payload = "." + b64.EncodeToString(compressed)
	} else {
		payload = b64.EncodeToString(text)
	}
	signed := payload + "." + b64.EncodeToString(timestampBytes(p.Issued.Unix()))
	var sum [sha1.Size]byte
	return signed + "." + b64.EncodeToString(c.sign(c.keys[0], signed, sum[:])), nil
}

// sign returns the HMAC-SHA1 of signed with one derived key, into sum.
func (c *FlaskCodec) sign(key *sync.Pool, signed string, sum []byte) []byte {
	mac := key.Get().(hash.Hash)
	mac.Write(unsafe.Slice(unsafe.StringData(signed), len(signed)))
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
		if hmac.Equal(c.sign(key, signed, sum[:]), sig[:]) {
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
	return Payload{JSON: unescapeTopLevelTag(text), Issued: time.Unix(seconds, 0)}, keyIndex, nil
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
	return inflate(raw)
}

// zlibWriters are reused: a new zlib writer allocates its window and hash
// tables, hundreds of kilobytes, per call. The fastest level is used: Flask
// only needs the result to be zlib, and keeps it only when it is shorter.
var zlibWriters = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed)
	return w
}}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b))
	w := zlibWriters.Get().(*zlib.Writer)
	w.Reset(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	zlibWriters.Put(w)
	return buf.Bytes()
}

// zlibReaders are reused for the same reason.
var zlibReaders sync.Pool

func inflate(compressed []byte) ([]byte, error) {
	src := bytes.NewReader(compressed)
	var r io.ReadCloser
	if pooled, ok := zlibReaders.Get().(io.ReadCloser); ok {
		if err := pooled.(zlib.Resetter).Reset(src, nil); err != nil {
			return nil, errors.New("payload is not zlib")
		}
		r = pooled
	} else {
		var err error
		if r, err = zlib.NewReader(src); err != nil {
			return nil, errors.New("payload is not zlib")
		}
	}
	defer zlibReaders.Put(r)
	inflated, err := io.ReadAll(io.LimitReader(r, maxInflatedPayload+1))
	if err != nil {
		return nil, errors.New("payload is not valid zlib")
	}
	if len(inflated) > maxInflatedPayload {
		return nil, fmt.Errorf("payload inflates beyond %d bytes", maxInflatedPayload)
	}
	return inflated, nil
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
