// Package rails is the codec of Rails' encrypted cookie session store
// (ActionDispatch::Session::CookieStore), as Rails 6.1 (Debian 12's) and
// Rails 7 write it, with the JSON cookie serializer: codec rails.
//
// The key is PBKDF2 of secret_key_base with the salt "authenticated
// encrypted cookie", 1000 iterations and 32 bytes, with HMAC-SHA1 (Rails
// 6.1 and older defaults) or HMAC-SHA256 (Rails 7 defaults,
// key_generator_hash_digest_class), the codec option key_digest. The
// session, serialized as JSON, is wrapped in Rails' metadata envelope
//
//	{"_rails":{"message":"<base64 of the JSON>","exp":<ISO 8601 or null>,"pur":"cookie.<cookie name>"}}
//
// and sealed with AES-256-GCM under a random 12-byte IV and no associated
// data; the cookie value is base64(ciphertext)--base64(iv)--base64(tag),
// escaped as the cookie jar escapes it (Rack::Utils.escape: + / = as %2B
// %2F %3D).
//
// Reading, as Rails' cookie jar reads: the current key, then the fallbacks
// (cookies_rotations); the purpose must be cookie.<cookie name> (or absent,
// Rails' second, purpose-less parse, which also accepts a value with no
// envelope at all); the exp is handed to the Manager, which refuses the
// value from then on. A session serialized with Marshal (the :marshal or
// :hybrid serializers) is never deserialized: it is undecodable.
package rails

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"
	"unsafe"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// CodecName is the codec's name in a configuration.
const CodecName = "rails"

const (
	// salt is Rails' authenticated_encrypted_cookie_salt.
	salt = "authenticated encrypted cookie"
	// iterations is what Rails::Application#key_generator uses.
	iterations = 1000
	keyLen     = 32 // AES-256
	ivLen      = 12 // OpenSSL's GCM default, Rails' random_iv
	tagLen     = 16
	// expFormat is Time#iso8601(3) of a UTC time, as Rails writes exp.
	expFormat = "2006-01-02T15:04:05.000Z"
)

// marshalSignature starts every Marshal dump (format 4.8).
var marshalSignature = []byte{0x04, 0x08}

func init() {
	sessioncore.RegisterCodec(sessioncore.CodecInfo{
		Name: CodecName,
		New: func(secret []byte, fallbacks ...[]byte) (sessioncore.Codec, error) {
			return New(nil, secret, fallbacks...)
		},
		NewWithOptions: func(options map[string]string, secret []byte, fallbacks ...[]byte) (sessioncore.Codec, error) {
			return New(options, secret, fallbacks...)
		},
		SharedWithApp:   true,
		AnySecretLength: true,
	})
}

// Codec reads and writes a Rails app's encrypted session cookie.
type Codec struct {
	aeads []cipher.AEAD // the current key's first, then the fallbacks'
}

// New returns a codec that encrypts with secret (secret_key_base) and also
// opens cookies encrypted with any of fallbacks (older secret_key_base
// values). Its one option is key_digest: sha1 (default) or sha256.
func New(options map[string]string, secret []byte, fallbacks ...[]byte) (*Codec, error) {
	if err := sessioncore.UnknownCodecOptions(CodecName, options, "key_digest"); err != nil {
		return nil, err
	}
	var digest func() hash.Hash
	switch options["key_digest"] {
	case "", "sha1":
		digest = sha1.New
	case "sha256":
		digest = sha256.New
	default:
		return nil, fmt.Errorf("key_digest must be sha1 (Rails 6.1 and older) or sha256 (Rails 7), not %q", options["key_digest"])
	}
	c := &Codec{}
	for i, s := range append([][]byte{secret}, fallbacks...) {
		if len(s) == 0 {
			if i == 0 {
				return nil, errors.New("secret is empty")
			}
			return nil, fmt.Errorf("fallback secret %d is empty", i)
		}
		key, err := pbkdf2.Key(digest, string(s), []byte(salt), iterations, keyLen)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		c.aeads = append(c.aeads, aead)
	}
	return c, nil
}

var b64 = base64.StdEncoding.Strict()

// Encode seals p.JSON, the session, for the cookie called name, with
// p.Expires as exp (null when zero) and a new random IV.
func (c *Codec) Encode(name string, p sessioncore.Payload) (string, error) {
	env := make([]byte, 0, 80+b64.EncodedLen(len(p.JSON))+len(name)+tagLen)
	env = append(env, `{"_rails":{"message":"`...)
	env = b64.AppendEncode(env, p.JSON)
	env = append(env, `","exp":`...)
	if p.Expires.IsZero() {
		env = append(env, "null"...)
	} else {
		env = append(env, '"')
		env = p.Expires.UTC().AppendFormat(env, expFormat)
		env = append(env, '"')
	}
	env = append(env, `,"pur":"cookie.`...)
	env = appendJSONString(env, name)
	env = append(env, `"}}`...)

	var iv [ivLen]byte
	if _, err := rand.Read(iv[:]); err != nil {
		return "", err
	}
	sealed := c.aeads[0].Seal(env[:0], iv[:], env, nil) // in place
	ciphertext, tag := sealed[:len(sealed)-tagLen], sealed[len(sealed)-tagLen:]
	// base64 of the three parts, then escaped as Rack escapes: + / = take
	// three bytes each, which at most doubles the text's length (padding
	// aside, a fair bound).
	n := b64.EncodedLen(len(ciphertext)) + b64.EncodedLen(ivLen) + b64.EncodedLen(tagLen) + 4
	text := make([]byte, 0, n)
	text = b64.AppendEncode(text, ciphertext)
	text = append(text, "--"...)
	text = b64.AppendEncode(text, iv[:])
	text = append(text, "--"...)
	text = b64.AppendEncode(text, tag)
	escapes := 0
	for _, ch := range text {
		if ch == '+' || ch == '/' || ch == '=' {
			escapes++
		}
	}
	out := make([]byte, 0, len(text)+2*escapes)
	for _, ch := range text {
		switch ch {
		case '+':
			out = append(out, "%2B"...)
		case '/':
			out = append(out, "%2F"...)
		case '=':
			out = append(out, "%3D"...)
		default:
			out = append(out, ch)
		}
	}
	// out is never written again, so it can back the string directly.
	return unsafe.String(unsafe.SliceData(out), len(out)), nil
}

// appendJSONString appends s as the inside of a JSON string, as
// ActiveSupport's JSON encoder writes it (it escapes <, > and & too). A
// cookie name is a token: no quote, backslash or control character.
func appendJSONString(b []byte, s string) []byte {
	if !strings.ContainsAny(s, `<>&"\`) {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '<', '>', '&':
			b = fmt.Appendf(b, `\u%04x`, ch)
		case '"', '\\':
			b = append(b, '\\', ch)
		default:
			b = append(b, ch)
		}
	}
	return b
}

// unescape undoes Rack's escaping as Rack's cookie parser does
// (URI.decode_www_form_component: %XX, and + as a space, which no base64
// part may then contain).
func unescape(value string) ([]byte, bool) {
	out := make([]byte, 0, len(value))
	for i := 0; i < len(value); i++ {
		switch ch := value[i]; ch {
		case '%':
			if i+2 >= len(value) {
				return nil, false
			}
			hi, ok1 := unhex(value[i+1])
			lo, ok2 := unhex(value[i+2])
			if !ok1 || !ok2 {
				return nil, false
			}
			out = append(out, hi<<4|lo)
			i += 2
		case '+':
			out = append(out, ' ')
		default:
			out = append(out, ch)
		}
	}
	return out, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// envelope is Rails' metadata (ActiveSupport::Messages::Metadata).
type envelope struct {
	Rails *struct {
		Message *string         `json:"message"`
		Exp     json.RawMessage `json:"exp"`
		Pur     json.RawMessage `json:"pur"`
	} `json:"_rails"`
}

// Decode opens value, the cookie called name, with the current key, then
// the fallbacks. A value no key opens, or one made for another cookie
// (its purpose), is a bad signature; one whose envelope or session cannot
// be read, or whose session was serialized with Marshal, is undecodable.
// The session's JSON is returned as Rails wrote it, with exp as Expires
// and no issue time (the format has none).
func (c *Codec) Decode(name, value string) (sessioncore.Payload, int, error) {
	if len(value) > sessioncore.MaxCookieSize {
		return sessioncore.Payload{}, 0, sessioncore.ErrBadSignature
	}
	raw, ok := unescape(value)
	if !ok {
		return sessioncore.Payload{}, 0, sessioncore.ErrBadSignature
	}
	parts := bytes.Split(raw, []byte("--"))
	if len(parts) != 3 {
		return sessioncore.Payload{}, 0, sessioncore.ErrBadSignature
	}
	ciphertext, err1 := b64.AppendDecode(nil, parts[0])
	iv, err2 := b64.AppendDecode(nil, parts[1])
	tag, err3 := b64.AppendDecode(nil, parts[2])
	if err1 != nil || err2 != nil || err3 != nil || len(iv) != ivLen || len(tag) != tagLen {
		return sessioncore.Payload{}, 0, sessioncore.ErrBadSignature
	}
	sealed := append(ciphertext, tag...)
	keyIndex := -1
	var plain []byte
	for i, aead := range c.aeads {
		var err error
		if plain, err = aead.Open(nil, iv, sealed, nil); err == nil {
			keyIndex = i
			break
		}
	}
	if keyIndex < 0 {
		return sessioncore.Payload{}, 0, sessioncore.ErrBadSignature
	}
	message, expires, err := unwrap(plain, name)
	if err != nil {
		return sessioncore.Payload{}, keyIndex, err
	}
	if bytes.HasPrefix(message, marshalSignature) {
		return sessioncore.Payload{}, keyIndex, fmt.Errorf("%w: the session is serialized with Ruby's Marshal, which is never deserialized; use the JSON cookie serializer", sessioncore.ErrUndecodable)
	}
	return sessioncore.Payload{JSON: message, Expires: expires}, keyIndex, nil
}

// unwrap returns the message in Rails' metadata envelope, checking its
// purpose, and its expiry. A plaintext that is not an envelope is the
// message itself, as Rails 6.1 reads it (a cookie written without
// use_cookies_with_metadata).
func unwrap(plain []byte, name string) ([]byte, time.Time, error) {
	var env envelope
	if !bytes.HasPrefix(plain, []byte("{")) || json.Unmarshal(plain, &env) != nil || env.Rails == nil {
		return plain, time.Time{}, nil
	}
	var purpose *string
	if err := json.Unmarshal(orNull(env.Rails.Pur), &purpose); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: the purpose is not a string", sessioncore.ErrUndecodable)
	}
	// Rails parses with the purpose cookie.<name>, then with none, which
	// matches a missing or empty one.
	if purpose != nil && *purpose != "" && *purpose != "cookie."+name {
		return nil, time.Time{}, fmt.Errorf("%w: made for another cookie (its purpose is not cookie.%s)", sessioncore.ErrBadSignature, name)
	}
	var exp *string
	if err := json.Unmarshal(orNull(env.Rails.Exp), &exp); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: exp is not a string", sessioncore.ErrUndecodable)
	}
	var expires time.Time
	if exp != nil {
		var err error
		if expires, err = time.Parse(time.RFC3339Nano, *exp); err != nil {
			return nil, time.Time{}, fmt.Errorf("%w: exp is not an ISO 8601 time", sessioncore.ErrUndecodable)
		}
	}
	if env.Rails.Message == nil {
		return nil, time.Time{}, fmt.Errorf("%w: the envelope has no message", sessioncore.ErrUndecodable)
	}
	message, err := b64.DecodeString(*env.Rails.Message)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: the message is not base64", sessioncore.ErrUndecodable)
	}
	return message, expires, nil
}

func orNull(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return json.RawMessage("null")
	}
	return raw
}

var _ sessioncore.Codec = (*Codec)(nil)
