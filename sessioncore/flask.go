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
	"io"
	"strings"
	"time"
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
	keys [][]byte // derived signing keys: current first, then fallbacks
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
		c.keys = append(c.keys, mac.Sum(nil))
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
	return signed + "." + b64.EncodeToString(c.sign(c.keys[0], signed)), nil
}

func (c *FlaskCodec) sign(key []byte, signed string) []byte {
	mac := hmac.New(sha1.New, key)
	mac.Write([]byte(signed))
	return mac.Sum(nil)
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
	sig, err := b64.DecodeString(value[dot+1:])
	if err != nil {
		return Payload{}, 0, ErrBadSignature
	}
	keyIndex := -1
	for i, key := range c.keys {
		if hmac.Equal(c.sign(key, signed), sig) {
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
	r, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, errors.New("payload is not zlib")
	}
	inflated, err := io.ReadAll(io.LimitReader(r, maxInflatedPayload+1))
	if err != nil {
		return nil, errors.New("payload is not valid zlib")
	}
	if len(inflated) > maxInflatedPayload {
		return nil, fmt.Errorf("payload inflates beyond %d bytes", maxInflatedPayload)
	}
	return inflated, nil
}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
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
