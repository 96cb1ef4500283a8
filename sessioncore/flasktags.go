package sessioncore

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// ValueForm converts between the form in which a codec stores a session
// value and the plain JSON the upstream reads and writes. Codecs whose
// stored form is plain JSON do not implement it.
type ValueForm interface {
	// ToPlain returns stored as plain JSON.
	ToPlain(stored json.RawMessage) json.RawMessage
	// FromPlain returns plain JSON in the stored form.
	FromPlain(plain json.RawMessage) json.RawMessage
}

// Flask's tag keys (flask/json/tag.py). A one-key object whose key is one of
// these is a tagged value.
const (
	tagDict   = " di"
	tagTuple  = " t"
	tagBytes  = " b"
	tagMarkup = " m"
	tagUUID   = " u"
	tagDate   = " d"
)

func isTagKey(k string) bool {
	switch k {
	case tagDict, tagTuple, tagBytes, tagMarkup, tagUUID, tagDate:
		return true
	}
	return false
}

// tagMarker is how every tagged object starts. Values without it are the
// same in both forms, which spares the common case any parsing.
var tagMarker = []byte(`{" `)

// FlaskTags is the ValueForm of Flask's tagged JSON. In plain JSON:
//
//   - a tuple {" t": [...]} is an array;
//   - bytes {" b": "<base64>"} are the base64 string;
//   - Markup {" m": "<html>"} is the string;
//   - a UUID {" u": "<32 hex>"} is the string in 8-4-4-4-12 form;
//   - a datetime {" d": "<HTTP date>"} is an RFC 3339 string in UTC;
//   - an escaped object {" di": {"<key>__": v}} is {"<key>": v}.
//
// Going back, a plain one-key object whose key is a tag key is escaped with
// " di", as Flask does; nothing else is tagged, since plain JSON has no
// tuples, bytes or dates.
type FlaskTags struct{}

// ToPlain implements ValueForm.
func (FlaskTags) ToPlain(stored json.RawMessage) json.RawMessage {
	if !bytes.Contains(stored, tagMarker) {
		return stored
	}
	v, ok := decodeTree(stored)
	if !ok {
		return stored
	}
	return appendTree(nil, untag(v))
}

// FromPlain implements ValueForm.
func (FlaskTags) FromPlain(plain json.RawMessage) json.RawMessage {
	if !bytes.Contains(plain, tagMarker) {
		return plain
	}
	v, ok := decodeTree(plain)
	if !ok {
		return plain
	}
	return appendTree(nil, tag(v))
}

// untag works bottom-up, as Flask's _untag_scan does.
func untag(v any) any {
	switch v := v.(type) {
	case []any:
		for i := range v {
			v[i] = untag(v[i])
		}
		return v
	case map[string]any:
		for k := range v {
			v[k] = untag(v[k])
		}
		if len(v) != 1 {
			return v
		}
		for k, inner := range v {
			return untagOne(k, inner, v)
		}
	}
	return v
}

func untagOne(key string, inner any, whole map[string]any) any {
	switch key {
	case tagTuple, tagBytes, tagMarkup:
		return inner
	case tagUUID:
		if s, ok := inner.(string); ok && len(s) == 32 {
			return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
		}
		return inner
	case tagDate:
		if s, ok := inner.(string); ok {
			if t, err := http.ParseTime(s); err == nil {
				return t.UTC().Format(time.RFC3339)
			}
		}
		return inner
	case tagDict:
		if escaped, ok := inner.(map[string]any); ok {
			out := make(map[string]any, len(escaped))
			for k, v := range escaped {
				out[k[:max(len(k)-2, 0)]] = v
			}
			return out
		}
		return inner
	}
	return whole
}

// tag escapes one-key objects whose key is a tag key, as Flask's TagDict does.
func tag(v any) any {
	switch v := v.(type) {
	case []any:
		for i := range v {
			v[i] = tag(v[i])
		}
		return v
	case map[string]any:
		for k := range v {
			v[k] = tag(v[k])
		}
		if len(v) == 1 {
			for k, inner := range v {
				if isTagKey(k) {
					return map[string]any{tagDict: map[string]any{k + "__": inner}}
				}
			}
		}
		return v
	}
	return v
}

// decodeTree parses JSON keeping numbers as their text.
func decodeTree(raw []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

// appendTree writes a decoded tree back as compact, sorted, ASCII JSON.
func appendTree(buf []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(buf, "null"...)
	case bool:
		if v {
			return append(buf, "true"...)
		}
		return append(buf, "false"...)
	case json.Number:
		return append(buf, v...)
	case string:
		return appendString(buf, v)
	case []any:
		buf = append(buf, '[')
		for i, item := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendTree(buf, item)
		}
		return append(buf, ']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, strings.Compare)
		return appendMembers(buf, keys, func(buf []byte, k string) []byte { return appendTree(buf, v[k]) })
	}
	return append(buf, "null"...)
}

var _ ValueForm = FlaskTags{}
