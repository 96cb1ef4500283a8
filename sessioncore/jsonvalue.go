package sessioncore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// MaxNestingDepth is how deeply arrays and objects may nest inside a value
// that an upstream writes into the session. Deeper documents are rejected
// before they are parsed further, so a hostile upstream cannot make the
// gateway recurse without bound.
const MaxNestingDepth = 32

// Errors returned when a JSON document cannot become part of a session.
var (
	// ErrNotJSON means the bytes are not one valid JSON value.
	ErrNotJSON = errors.New("not valid JSON")
	// ErrNotObject means the JSON value is valid but not an object.
	ErrNotObject = errors.New("not a JSON object")
	// ErrTooDeep means arrays or objects nest deeper than MaxNestingDepth.
	ErrTooDeep = fmt.Errorf("nested deeper than %d levels", MaxNestingDepth)
	// ErrBadKey means an object key is not valid Unicode (a lone surrogate
	// or U+FFFD), so it could not be kept as it was written.
	ErrBadKey = errors.New("object key is not valid Unicode")
)

// normalizeJSON validates one JSON value and returns it compact, with every
// character outside printable ASCII escaped as \uXXXX (a surrogate pair
// beyond the Basic Multilingual Plane). The result is safe to place in an
// HTTP header value and is byte-stable: the same value always normalizes to
// the same bytes, keeping the key order it came with.
func normalizeJSON(raw []byte) ([]byte, error) { return normalizeJSONDepth(raw, MaxNestingDepth) }

// normalizeJSONDepth is normalizeJSON with a nesting limit of maxDepth.
func normalizeJSONDepth(raw []byte, maxDepth int) ([]byte, error) {
	var compact bytes.Buffer
	compact.Grow(len(raw))
	if err := json.Compact(&compact, raw); err != nil {
		return nil, ErrNotJSON
	}
	b := compact.Bytes()
	if len(b) == 0 {
		return nil, ErrNotJSON
	}
	if err := checkDepth(b, maxDepth); err != nil {
		return nil, err
	}
	if isPrintableASCII(b) {
		return b, nil
	}
	return escapeNonASCII(b), nil
}

// checkDepth reports ErrTooDeep when the compact JSON text b nests arrays or
// objects deeper than maxDepth. Brackets inside strings do not count.
func checkDepth(b []byte, maxDepth int) error {
	depth := 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++ // skip the escaped character
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > maxDepth {
				return ErrTooDeep
			}
		case ']', '}':
			depth--
		}
	}
	return nil
}

func isPrintableASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// escapeNonASCII rewrites every byte sequence outside printable ASCII as a
// JSON \u escape. Valid compact JSON only holds such bytes inside strings,
// where the escape means the same character, so the document's meaning is
// unchanged. Invalid UTF-8 becomes U+FFFD, as encoding/json would decode it.
func escapeNonASCII(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/2)
	for i := 0; i < len(b); {
		if c := b[i]; c >= 0x20 && c <= 0x7e {
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		i += size
		out = appendUnicodeEscape(out, r)
	}
	return out
}

// appendUnicodeEscape appends r as \uXXXX, or as a surrogate pair of two
// such escapes beyond the Basic Multilingual Plane, in lowercase hex as
// Python writes it.
func appendUnicodeEscape(buf []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	if r >= 0x10000 {
		r -= 0x10000
		buf = appendUnicodeEscape(buf, 0xd800+(r>>10)&0x3ff)
		return appendUnicodeEscape(buf, 0xdc00+r&0x3ff)
	}
	return append(buf, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

// parseObject parses a JSON object into its top-level members, each kept as
// normalized raw JSON. When a key repeats, the last one wins, as it does in
// Go's encoding/json and in Python's json module, so the gateway and a
// Python upstream never disagree about what a document says.
//
// The members' keys and values may share memory with raw, which must not be
// modified afterwards.
func parseObject(raw []byte) (map[string]json.RawMessage, error) {
	members, _, err := parseObjectKeep(raw)
	return members, err
}

// parseObjectKeep is parseObject that also reports whether raw was already
// normalized, so that it can stand for the members as they are.
func parseObjectKeep(raw []byte) (members map[string]json.RawMessage, normalized bool, err error) {
	b := raw
	// Fast path: what the gateway itself wrote is already compact and
	// ASCII, which one scan tells; json.Valid then checks it without
	// allocating.
	compactASCII, depth := scanShape(b)
	switch {
	case !compactASCII:
		if b, err = normalizeJSON(raw); err != nil {
			return nil, false, err
		}
	case depth > MaxNestingDepth:
		return nil, false, ErrTooDeep
	case !json.Valid(b):
		return nil, false, ErrNotJSON
	}
	if len(b) == 0 || b[0] != '{' {
		return nil, false, ErrNotObject
	}
	members, err = splitObject(b)
	return members, compactASCII && err == nil, err
}

// stringByte marks the bytes that may stand in a JSON string as they are:
// printable ASCII but the quote and the backslash.
var stringByte = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanShape reports, in one pass, whether b is printable ASCII with no
// whitespace outside strings, and how deeply it nests.
func scanShape(b []byte) (compactASCII bool, depth int) {
	level := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			for i++; i < len(b); i++ {
				if stringByte[b[i]] {
					continue
				}
				if b[i] == '"' {
					break
				}
				if b[i] != '\\' || i+1 == len(b) || b[i+1] < 0x20 || b[i+1] > 0x7e {
					return false, 0
				}
				i++ // the escaped character
			}
		case '[', '{':
			level++
			depth = max(depth, level)
		case ']', '}':
			level--
		default:
			if c <= ' ' || c > 0x7e {
				return false, 0
			}
		}
	}
	return true, depth
}

// checkNormalizedObject checks JSON this gateway wrote itself (see
// Payload.Normalized) without splitting it: it skips json.Valid, the
// costliest step, but still refuses anything that is not compact printable
// ASCII of a bounded depth in the shape of an object, so a forged payload
// cannot inject a header or make the gateway recurse; what passes, splits.
// It returns the object's _permanent value, which every request needs.
func checkNormalizedObject(b []byte) (permanent json.RawMessage, err error) {
	compactASCII, depth := scanShape(b)
	switch {
	case !compactASCII:
		return nil, ErrNotJSON
	case depth > MaxNestingDepth:
		return nil, ErrTooDeep
	case len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}':
		return nil, ErrNotObject
	}
	err = walkObject(b, func(key string, value json.RawMessage) bool {
		if key == PermanentKey {
			permanent = value
		}
		return true
	})
	return permanent, err
}

// splitObject splits a compact JSON object into its members without
// copying: keys and values point into b.
func splitObject(b []byte) (map[string]json.RawMessage, error) {
	members := make(map[string]json.RawMessage, bytes.Count(b, []byte{':'}))
	if err := walkObject(b, func(key string, value json.RawMessage) bool { members[key] = value; return true }); err != nil {
		return nil, err
	}
	return members, nil
}

// lookupMember returns the value of key in a compact JSON object, without
// splitting it.
func lookupMember(b []byte, key string) (value json.RawMessage, found bool) {
	_ = walkObject(b, func(k string, v json.RawMessage) bool {
		if k == key {
			value, found = v, true // the last one, should a key repeat, as splitObject and Python's json keep
		}
		return true
	})
	return value, found
}

// walkObject calls member for each member of a compact JSON object, in
// order, until it returns false; keys and values point into b. It checks
// the punctuation between the members it reaches, so that malformed input
// is an error, never a panic.
func walkObject(b []byte, member func(key string, value json.RawMessage) (more bool)) error {
	i := 1 // past '{'
	for i < len(b) && b[i] != '}' {
		if b[i] != '"' {
			return ErrNotJSON
		}
		keyEnd := stringEnd(b, i)
		if keyEnd >= len(b) || b[keyEnd] != ':' {
			return ErrNotJSON
		}
		key, err := objectKey(b[i:keyEnd])
		if err != nil {
			return err
		}
		valueStart := keyEnd + 1
		valueEnd := valueEnd(b, valueStart)
		if valueEnd <= valueStart || valueEnd >= len(b) {
			return ErrNotJSON
		}
		if !member(key, b[valueStart:valueEnd:valueEnd]) {
			return nil
		}
		i = valueEnd
		switch b[i] {
		case ',':
			i++
			if i < len(b) && b[i] == '}' {
				return ErrNotJSON // a trailing comma
			}
		case '}':
		default:
			return ErrNotJSON
		}
	}
	if i != len(b)-1 {
		return ErrNotJSON
	}
	return nil
}

// objectKey returns the string a quoted key stands for.
func objectKey(quoted []byte) (string, error) {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return unsafe.String(unsafe.SliceData(quoted[1:]), len(quoted)-2), nil
	}
	var key string
	if err := json.Unmarshal(quoted, &key); err != nil {
		return "", ErrNotJSON
	}
	// A lone surrogate in a key decodes to U+FFFD, and two different keys
	// could merge into one; refuse rather than change keys.
	if strings.ContainsRune(key, utf8.RuneError) {
		return "", ErrBadKey
	}
	return key, nil
}

// stringEnd returns the index just past the JSON string starting at b[i]:
// past the first quote after it that an odd run of backslashes does not
// escape. Each quote is found with bytes.IndexByte, which reads many bytes
// at a time: a request that looks up its user in an unsplit session scans
// the values before it.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			break
		}
		quote := j + k
		backslashes := 0
		for p := quote - 1; p > i && b[p] == '\\'; p-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return quote + 1
		}
		j = quote + 1
	}
	return len(b)
}

// valueEnd returns the index just past the compact JSON value at b[i].
func valueEnd(b []byte, i int) int {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			j = stringEnd(b, j) - 1
		case '[', '{':
			depth++
		case ']', '}':
			if depth == 0 {
				return j
			}
			depth--
			if depth == 0 {
				return j + 1
			}
		case ',':
			if depth == 0 {
				return j
			}
		}
	}
	return len(b)
}

// appendObject appends members as one compact JSON object with its keys in
// sorted (code point) order, the order Flask writes them in. The members'
// values must already be normalized.
func appendObject(buf []byte, members map[string]json.RawMessage) []byte {
	var small [16]string // most sessions have few keys: no allocation
	keys := small[:0]
	size := 2
	for k, v := range members {
		keys = append(keys, k)
		size += len(k) + len(v) + 4
	}
	slices.Sort(keys)
	buf = slices.Grow(buf, size)
	return appendMembers(buf, keys, func(buf []byte, k string) []byte { return append(buf, members[k]...) })
}

// appendMembers appends a JSON object of keys, in the order given, whose
// values value writes.
func appendMembers(buf []byte, keys []string, value func(buf []byte, key string) []byte) []byte {
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, k)
		buf = append(buf, ':')
		buf = value(buf, k)
	}
	return append(buf, '}')
}

// appendString appends s as a JSON string in printable ASCII, escaping the
// way Python's json module does with ensure_ascii (and leaving <, > and &
// alone, unlike Go's HTML-safe default).
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for _, r := range s { // invalid UTF-8 arrives as U+FFFD
		switch {
		case r == '"' || r == '\\':
			buf = append(buf, '\\', byte(r))
		case r == '\n':
			buf = append(buf, '\\', 'n')
		case r == '\r':
			buf = append(buf, '\\', 'r')
		case r == '\t':
			buf = append(buf, '\\', 't')
		case r == '\b':
			buf = append(buf, '\\', 'b')
		case r == '\f':
			buf = append(buf, '\\', 'f')
		case r >= 0x20 && r <= 0x7e:
			buf = append(buf, byte(r))
		default:
			buf = appendUnicodeEscape(buf, r)
		}
	}
	return append(buf, '"')
}

// quotedLen returns len(appendString(nil, s)) without making it.
func quotedLen(s string) int {
	n := len(`""`)
	for _, r := range s {
		switch {
		case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t' || r == '\b' || r == '\f':
			n += 2
		case r >= 0x20 && r <= 0x7e:
			n++
		case r > 0xffff:
			n += 12 // a surrogate pair, \uXXXX\uXXXX
		default:
			n += 6
		}
	}
	return n
}

// mergePatch applies an RFC 7386 JSON Merge Patch to target and returns the
// result. target may be nil (absent). Both are normalized JSON; so is the
// result. Objects that take part in a merge are written with sorted keys.
func mergePatch(target, patch json.RawMessage) json.RawMessage {
	if len(patch) == 0 || patch[0] != '{' {
		return patch
	}
	var patchMembers map[string]json.RawMessage
	_ = json.Unmarshal(patch, &patchMembers) // normalized JSON always parses

	targetMembers := map[string]json.RawMessage{}
	if len(target) > 0 && target[0] == '{' {
		_ = json.Unmarshal(target, &targetMembers)
	}
	for k, v := range patchMembers {
		if isNull(v) {
			delete(targetMembers, k)
			continue
		}
		targetMembers[k] = mergePatch(targetMembers[k], v)
	}
	return appendObject(nil, targetMembers)
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }

// truthy reports whether a JSON value is true in Python's sense, which is how
// Flask reads the _permanent flag: false, null, 0, "", [] and {} are false.
func truthy(v json.RawMessage) bool {
	switch string(v) {
	case "", "false", "null", `""`, "[]", "{}":
		return false
	}
	if c := v[0]; c == '-' || (c >= '0' && c <= '9') {
		var f float64
		if err := json.Unmarshal(v, &f); err == nil {
			return f != 0
		}
	}
	return true
}
