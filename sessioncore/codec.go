package sessioncore

import (
	"errors"
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
