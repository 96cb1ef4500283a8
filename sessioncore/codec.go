package sessioncore

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Errors a Codec returns from Decode. Manager.Open turns both into a new,
// empty session; they differ in what they tell an operator.
var (
	// ErrBadSignature means no configured key authenticates the value: it
	// was tampered with, made with an unknown key, truncated or not a
	// cookie of ours at all.
	ErrBadSignature = errors.New("signature does not verify with any configured key")
	// ErrUndecodable means a key authenticates the value but its contents
	// cannot be read. Only a holder of a key can make such a cookie.
	ErrUndecodable = errors.New("signed payload cannot be decoded")
)

// Payload is what a Codec seals into a cookie value.
type Payload struct {
	// JSON is the session: one JSON object.
	JSON []byte
	// Issued is when this cookie value was made. Manager.Open measures
	// the session's age from it.
	Issued time.Time
	// Created is when the session was first issued. Codecs whose format
	// has no room for it return the zero time.
	Created time.Time
	// Normalized, set by Decode, says that JSON can only have been written
	// by this gateway (it was encrypted and authenticated with its keys),
	// so it is compact, ASCII and valid, and Open may skip validating it
	// again. It is still checked for shape, so a forged payload can never
	// reach a header as anything but printable ASCII.
	Normalized bool
	// Expires is for a format that carries an expiry of its own (Rails'
	// exp). Encode is given when the Manager stops accepting the value
	// (Issued plus the lifetime, or the end of the absolute lifetime if
	// sooner); Decode returns the expiry the value carries, or the zero
	// time, and Open refuses the value from that instant on. A codec whose
	// format has no issue time returns a zero Issued: the value is then
	// taken as issued a lifetime before it expires (but not after now),
	// or, without an expiry, as issued now.
	Expires time.Time
	// Sealed, set by Decode when the codec can reissue the value without
	// sealing its JSON again, is the codec's sealed form of JSON and, for
	// a codec that keeps it, Created. Encode reuses it when it is set, so
	// a caller passes it back only for a session whose JSON and creation
	// time are unchanged; only Issued may differ. It must not be modified.
	Sealed []byte
}

// Codec turns a Payload into a cookie value and back, authenticating it
// with a current key and accepting a list of fallback keys when reading.
//
// Encode always uses the current key. Decode tries the current key first,
// then the fallbacks in order, and reports which one opened the value: 0
// for the current key, i for the i-th fallback. It returns an error wrapping
// ErrBadSignature or ErrUndecodable when the value cannot be opened; the
// error never contains the value itself.
type Codec interface {
	Encode(name string, p Payload) (string, error)
	Decode(name, value string) (p Payload, keyIndex int, err error)
}

// SignedPair is implemented by a codec whose sealed value is a pair that
// the app keeps in two cookies: the value, and its signature in a cookie of
// its own (Express's cookie-session: <name> and <name>.sig). Encode returns
// the two joined by PairSeparator, and Decode is given them so, with an
// empty signature when the request has none. The Manager writes, forwards,
// strips and deletes the two cookies together, with the same attributes;
// it never splits such a session over numbered parts, and the budget
// (max_cookie_bytes) counts both cookies.
type SignedPair interface {
	// SignatureCookie returns the name of the cookie that carries the
	// signature of the cookie called name.
	SignatureCookie(name string) string
}

// PairSeparator joins a SignedPair codec's value and signature. No cookie
// value can hold it: it ends a cookie in a Cookie line.
const PairSeparator = ";"

// SignatureCookie returns the name of the signature cookie that codec keeps
// beside the cookie called name, or "" for a codec that keeps none.
func SignatureCookie(codec Codec, name string) string {
	if pair, ok := codec.(SignedPair); ok {
		return pair.SignatureCookie(name)
	}
	return ""
}

// SplitPair splits a SignedPair codec's sealed value into the value and
// its signature; ok is false when it holds no PairSeparator.
func SplitPair(sealed string) (value, signature string, ok bool) {
	return strings.Cut(sealed, PairSeparator)
}

// CodecInfo describes a cookie format: how to make its codec, and what
// the format allows. A codec registers itself once with RegisterCodec, and
// is chosen by name; nothing else needs to know it.
type CodecInfo struct {
	// Name is what a configuration calls it (codec <name>).
	Name string
	// New makes the codec with the current secret and older ones that are
	// still read.
	New func(secret []byte, fallbacks ...[]byte) (Codec, error)
	// NewWithOptions, when set, makes the codec with options of its own
	// (codec_options: name to value), refusing unknown names with an error
	// that names them. Without it, the codec takes no options.
	NewWithOptions func(options map[string]string, secret []byte, fallbacks ...[]byte) (Codec, error)
	// SharedWithApp says the cookie is an application's own (Flask's):
	// the gateway then forwards it to the upstream by default, never
	// splits it over several cookies (the app would not join them), and
	// keeps the session in it (no server-side store).
	SharedWithApp bool
	// KeepsCreationTime says the format carries the session's creation
	// time, which an absolute lifetime needs.
	KeepsCreationTime bool
	// AnySecretLength says the format's own framework accepts any
	// non-empty secret, so a short one is a warning, not an error.
	AnySecretLength bool
	// DefaultCookieName is the cookie's name when the configuration names
	// none: the app's own default (Django's "sessionid"). Empty means
	// DefaultCookieName ("session").
	DefaultCookieName string
}

// Make makes the codec with options, which only a codec with
// NewWithOptions takes.
func (info CodecInfo) Make(options map[string]string, secret []byte, fallbacks ...[]byte) (Codec, error) {
	if info.NewWithOptions != nil {
		return info.NewWithOptions(options, secret, fallbacks...)
	}
	if len(options) > 0 {
		return nil, fmt.Errorf("codec %s takes no options, got %s", info.Name, strings.Join(slices.Sorted(maps.Keys(options)), ", "))
	}
	return info.New(secret, fallbacks...)
}

// UnknownCodecOptions returns an error naming the options not in known, or
// nil: for a codec's NewWithOptions.
func UnknownCodecOptions(codec string, options map[string]string, known ...string) error {
	var unknown []string
	for name := range options {
		if !slices.Contains(known, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("codec %s has no option %s (its options: %s)", codec, strings.Join(unknown, ", "), strings.Join(known, ", "))
}

var codecs = map[string]CodecInfo{}

// RegisterCodec makes a codec available by its name. It panics on a name
// registered twice, as a programming error caught at start-up.
func RegisterCodec(info CodecInfo) {
	if _, dup := codecs[info.Name]; dup || info.Name == "" || info.New == nil {
		panic(fmt.Sprintf("sessioncore: codec %q registered twice, or without a name or constructor", info.Name))
	}
	codecs[info.Name] = info
}

// LookupCodec returns the codec registered under name.
func LookupCodec(name string) (CodecInfo, bool) {
	info, ok := codecs[name]
	return info, ok
}

// CodecNames returns the names of the registered codecs, sorted.
func CodecNames() []string { return slices.Sorted(maps.Keys(codecs)) }
