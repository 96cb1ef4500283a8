package sessioncore

import (
	"encoding/json"
	"maps"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// A browser sends the same cookie on every request until the cookie is
// reissued, so most requests carry a value the Manager has opened
// before. It remembers the most recent ones and skips, for those, what
// depends on the value alone: the base64, the HMAC, the decryption (or
// inflation) and the JSON check. What depends on the time (the lifetime,
// the idle timeout, the absolute lifetime, revoke_before) is checked again
// on every request.
//
// Only values that opened are remembered, so forged ones cannot fill the
// cache, and a hit is a byte-for-byte match of the whole value with one
// that was authenticated. Each Manager has its own cache, so a config
// reload, a new secret included, starts an empty one.
const (
	// openCacheSize is how many values a Manager remembers: enough for
	// the users of a busy site active at once. Cookies that come round in
	// turn, more of them than it holds, all miss (an LRU's worst case):
	// 4,096 rotating users missed every time at 1,024 entries.
	openCacheSize = 8192
	// maxCachedValue bounds the values remembered, and the JSON they open
	// to (a Flask cookie inflates), so that the cache stays within about
	// 40 MiB (some 10 MiB for 200-byte sessions). Larger sessions are
	// opened every time.
	maxCachedValue = 2048
)

// opened is what opening a cookie value yields before the time checks. It
// depends only on the value and the keys, and is never modified once made.
type opened struct {
	payload  Payload
	keyIndex int
	// For a payload the gateway wrote (Normalized), its _permanent value;
	// the JSON is split lazily by the session.
	permanent json.RawMessage
	// For any other payload, its values (each session gets a copy), and
	// whether the JSON stands for them as it is.
	values map[string]json.RawMessage
	asIs   bool
	// remembered is set when o goes into the cache, which only values
	// copied out of the request's Cookie line do: o then owns its bytes
	// (a Flask payload is a slice of the value), and may be the base of a
	// reissued value's entry.
	remembered bool
}

// openCache is a Manager's memory of recently opened values. The zero
// openCache remembers nothing.
type openCache struct {
	entries *lru.Cache[string, *opened]
}

func newOpenCache() openCache {
	entries, _ := lru.New[string, *opened](openCacheSize) // fails only for a size <= 0
	return openCache{entries: entries}
}

func (c openCache) get(value string) (*opened, bool) {
	if c.entries == nil {
		return nil, false
	}
	return c.entries.Get(value)
}

func (c openCache) contains(value string) bool {
	return c.entries != nil && c.entries.Contains(value)
}

// accepts reports whether value may be remembered, if it opens.
func (c openCache) accepts(value string) bool {
	return c.entries != nil && len(value) <= maxCachedValue
}

// add remembers o, not yet shared, as what value opens to.
func (c openCache) add(value string, o *opened) {
	if c.accepts(value) && len(o.payload.JSON) <= maxCachedValue {
		o.remembered = true
		c.entries.Add(value, o)
	}
}

// withoutOpenCache makes a Manager open every value afresh, for tests
// and benchmarks of the work the cache saves.
func withoutOpenCache() Option { return func(m *Manager) { m.cache = openCache{} } }

// parse reads o's JSON, which Decode returned, into o.
func (o *opened) parse() (err error) {
	if o.payload.Normalized {
		o.permanent, err = checkNormalizedObject(o.payload.JSON)
		o.asIs = err == nil
		return err
	}
	o.values, o.asIs, err = parseObjectKeep(o.payload.JSON)
	return err
}

// session returns a new session holding what o holds, its values stored
// in form.
func (o *opened) session(form ValueForm) *Session {
	var s *Session
	if o.payload.Normalized {
		s = sessionFromPayload(nil, o.payload.Created, form, o.payload.JSON)
		s.rawPermanent = o.permanent
	} else {
		var raw []byte
		if o.asIs {
			// Rewriting an unchanged session gives back the very bytes
			// it came with: for a Flask cookie, Flask's own, whatever its
			// key order.
			raw = o.payload.JSON
		}
		s = sessionFromPayload(maps.Clone(o.values), o.payload.Created, form, raw)
	}
	s.issued = o.payload.Issued
	if s.raw != nil {
		// Reissuing the unchanged session reuses what the codec sealed.
		s.sealed = o.payload.Sealed
		s.opened = o
	}
	return s
}

// reissued returns what opening the value that reissues o's session,
// sealed over the same Sealed under the current key at issued, yields.
// Codecs keep the issue time to the second.
func (o *opened) reissued(issued time.Time) *opened {
	again := *o
	again.payload.Issued = time.Unix(issued.Unix(), 0)
	again.keyIndex = 0
	return &again
}
