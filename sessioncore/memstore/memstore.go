// Package memstore keeps sessions in the memory of one process, for a
// single gateway instance. It is bounded in sessions and in bytes, and
// evicts the least recently used sessions past either bound.
package memstore

import (
	"container/list"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// Store keeps sessions in this process, for a single instance. It is
// bounded twice: in sessions and in bytes. When either bound is passed it
// evicts the least recently used sessions; expired sessions are dropped
// when they are looked up, and a few at the cold end of the list on every
// write, so no operation scans them all.
type Store struct {
	now func() time.Time

	mu          sync.Mutex
	maxSessions int
	maxBytes    int64
	bytes       int64                    // the sizes of every entry, added up
	entries     map[string]*list.Element // of *memoryEntry
	lru         *list.List               // front: most recently used
	evicted     evictionRecord
	onEvict     func(cause string)
	byUser      map[string]map[string]struct{} // user -> the IDs of their sessions
}

type memoryEntry struct {
	id      string
	values  map[string]json.RawMessage
	expires time.Time
	size    int64
	// owner and lastSeen index the session by its user (UserIndex).
	owner    *sessioncore.Owner
	lastSeen time.Time
}

// The causes of an eviction, as OnEvict reports them.
const (
	EvictedForSessions = "max_sessions"
	EvictedForMemory   = "max_memory"
)

// EvictionCauses lists every cause OnEvict reports.
var EvictionCauses = []string{EvictedForSessions, EvictedForMemory}

// What a session costs beyond its keys and values: the entry, its list
// element and map slot, its values map, and for each key its map slot and
// slice headers. Measured on Go 1.26 (a one-key session takes about 660
// bytes of heap; its index entry about 200 more), so that max_memory
// bounds what the process really holds.
const (
	entryOverhead = 576
	valueOverhead = 64
	ownerOverhead = 160
)

// NoMemoryLimit is a bound in bytes that is never reached.
const NoMemoryLimit = int64(1) << 62

// New returns a store of at most maxSessions sessions and no
// bound in bytes (see SetLimits). now is its clock; nil means time.Now.
func New(maxSessions int, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{
		now: now, maxSessions: max(maxSessions, 1), maxBytes: NoMemoryLimit,
		entries: map[string]*list.Element{}, lru: list.New(), evicted: newEvictionRecord(evictionRecordSize),
		byUser: map[string]map[string]struct{}{},
	}
}

// SetLimits changes the bounds in place, evicting the least recently used
// sessions until the store is within them: a reload that changes them
// logs nobody out who still fits.
func (m *Store) SetLimits(maxSessions int, maxBytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.maxSessions = max(maxSessions, 1)
	m.maxBytes = max(maxBytes, 1)
	m.evictOver("")
}

// OnEvict makes the store call f, under its lock, for every session it
// evicts to stay within its bounds (not for expired, emptied or deleted
// ones), with the bound that made it: EvictedForSessions or
// EvictedForMemory.
func (m *Store) OnEvict(f func(cause string)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onEvict = f
}

// Restore implements sessioncore.Evictions: under the store's lock, a
// session evicted recently to keep the store within its bounds, not
// deleted since and not past the expiry it had, is created again with
// values; one that another request restored meanwhile gets only changes.
// Deleted, renewed, emptied and expired sessions are never restored.
func (m *Store) Restore(_ context.Context, id string, values map[string]json.RawMessage, changes sessioncore.Changes, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live(id) != nil {
		changes.Create = false
		return m.commit(id, changes, ttl), nil
	}
	expires, ok := m.evicted.get(id)
	if !ok || !m.now().Before(expires) {
		return false, nil
	}
	return m.commit(id, sessioncore.Changes{Create: true, Clear: true, Set: values, Owner: changes.Owner}, ttl), nil
}

// Load implements Store.
func (m *Store) Load(_ context.Context, id string) (map[string]json.RawMessage, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.live(id)
	if e == nil {
		return nil, false, nil
	}
	m.lru.MoveToFront(m.entries[id])
	return maps.Clone(e.values), true, nil
}

// Commit implements Store.
func (m *Store) Commit(_ context.Context, id string, c sessioncore.Changes, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.commit(id, c, ttl), nil
}

// commit is Commit, under the lock.
func (m *Store) commit(id string, c sessioncore.Changes, ttl time.Duration) bool {
	m.sweep()
	e := m.live(id)
	switch {
	case e == nil && !c.Create:
		return false
	case e == nil:
		e = &memoryEntry{id: id, values: map[string]json.RawMessage{}}
		m.entries[id] = m.lru.PushFront(e)
		m.evicted.forget(id)
	default:
		m.lru.MoveToFront(m.entries[id])
	}
	if c.Clear {
		maps.DeleteFunc(e.values, func(k string, _ json.RawMessage) bool { return !strings.HasPrefix(k, sessioncore.PrivatePrefix) })
	}
	for k, v := range c.Set {
		e.values[k] = v
	}
	for _, k := range c.Deleted {
		delete(e.values, k)
	}
	if len(e.values) == 0 {
		m.remove(id)
		return false
	}
	if c.Owner != nil {
		m.index(e, c.Owner)
	}
	m.bytes -= e.size
	e.size = entrySize(e.values) + ownerSize(e.owner)
	m.bytes += e.size
	e.expires = m.now().Add(ttl)
	m.evictOver(id)
	return true
}

// Delete implements Store.
func (m *Store) Delete(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	found := m.live(id) != nil
	m.remove(id)
	m.evicted.forget(id) // a revoked session is never written back
	return found, nil
}

// Len returns the number of sessions held, expired ones included until
// they are evicted.
func (m *Store) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// Bytes returns what the sessions held take, as the store counts it for
// its bound in bytes.
func (m *Store) Bytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytes
}

// entrySize is what a session costs the store.
func entrySize(values map[string]json.RawMessage) int64 {
	size := int64(entryOverhead)
	for k, v := range values {
		size += int64(len(k) + len(v) + valueOverhead)
	}
	return size
}

// live returns the unexpired entry of id, evicting it if it has expired.
func (m *Store) live(id string) *memoryEntry {
	el, ok := m.entries[id]
	if !ok {
		return nil
	}
	e := el.Value.(*memoryEntry)
	if !m.now().Before(e.expires) && !e.expires.IsZero() {
		m.remove(id)
		return nil
	}
	return e
}

// sweep drops up to a few expired sessions from the cold end of the list,
// so that abandoned sessions do not wait for eviction to free memory.
func (m *Store) sweep() {
	now := m.now()
	for range 4 {
		back := m.lru.Back()
		if back == nil || now.Before(back.Value.(*memoryEntry).expires) {
			return
		}
		m.remove(back.Value.(*memoryEntry).id)
	}
}

// evictOver evicts the least recently used sessions, never keep, until
// the store is within its bounds.
func (m *Store) evictOver(keep string) {
	for {
		cause := ""
		switch {
		case len(m.entries) > m.maxSessions:
			cause = EvictedForSessions
		case m.bytes > m.maxBytes:
			cause = EvictedForMemory
		default:
			return
		}
		back := m.lru.Back()
		if back == nil || back.Value.(*memoryEntry).id == keep {
			return // only the session being written is left
		}
		evicted := back.Value.(*memoryEntry)
		m.remove(evicted.id)
		m.evicted.add(evicted.id, evicted.expires)
		if m.onEvict != nil {
			m.onEvict(cause)
		}
	}
}

func (m *Store) remove(id string) {
	if el, ok := m.entries[id]; ok {
		e := el.Value.(*memoryEntry)
		m.bytes -= e.size
		m.lru.Remove(el)
		delete(m.entries, id)
		m.unindex(e)
	}
}

// index files e under its owner's user, taking over the latest device and
// address and the time it was last seen.
func (m *Store) index(e *memoryEntry, o *sessioncore.Owner) {
	if e.owner != nil && e.owner.User != o.User {
		m.unindex(e)
	}
	created := o.Created
	if e.owner != nil && !e.owner.Created.IsZero() {
		created = e.owner.Created
	}
	owner := *o
	owner.Created = created
	e.owner, e.lastSeen = &owner, m.now()
	ids := m.byUser[o.User]
	if ids == nil {
		ids = map[string]struct{}{}
		m.byUser[o.User] = ids
	}
	ids[e.id] = struct{}{}
}

func (m *Store) unindex(e *memoryEntry) {
	if e.owner == nil {
		return
	}
	if ids := m.byUser[e.owner.User]; ids != nil {
		delete(ids, e.id)
		if len(ids) == 0 {
			delete(m.byUser, e.owner.User)
		}
	}
}

// ownerSize is what indexing a session costs the store: the owner's text
// and an entry in the user's set.
func ownerSize(o *sessioncore.Owner) int64 {
	if o == nil {
		return 0
	}
	return int64(len(o.User)+len(o.Device)+len(o.ClientIP)) + ownerOverhead
}

// Sessions implements sessioncore.UserIndex.
func (m *Store) Sessions(_ context.Context, user string) ([]sessioncore.SessionInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var infos []sessioncore.SessionInfo
	for id := range m.byUser[user] {
		e := m.live(id) // an expired one leaves the index here
		if e == nil || e.owner == nil {
			continue
		}
		infos = append(infos, sessioncore.SessionInfo{
			ID: id, IDHash: sessioncore.HashID(id), Created: e.owner.Created, LastSeen: e.lastSeen,
			Device: e.owner.Device, ClientIP: e.owner.ClientIP,
		})
	}
	slices.SortFunc(infos, func(a, b sessioncore.SessionInfo) int { return a.Created.Compare(b.Created) })
	return infos, nil
}

// Users returns how many users the index holds.
func (m *Store) Users() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byUser)
}

// evictionRecordSize is how many evicted IDs the store remembers: enough
// for the requests in flight when memory pressure strikes, a few MiB at
// most.
const evictionRecordSize = 4096

// evictionRecord remembers the last IDs evicted, with the expiry each had,
// oldest forgotten first.
type evictionRecord struct {
	byID map[string]evictedEntry
	ring []string
	next int
}

type evictedEntry struct {
	slot    int // in ring
	expires time.Time
}

func newEvictionRecord(size int) evictionRecord {
	return evictionRecord{byID: map[string]evictedEntry{}, ring: make([]string, size)}
}

func (r *evictionRecord) add(id string, expires time.Time) {
	if old := r.ring[r.next]; old != "" && r.byID[old].slot == r.next {
		delete(r.byID, old) // unless old was evicted again since, into a later slot
	}
	r.ring[r.next] = id
	r.byID[id] = evictedEntry{slot: r.next, expires: expires}
	r.next = (r.next + 1) % len(r.ring)
}

func (r *evictionRecord) forget(id string) { delete(r.byID, id) }

// get returns the expiry id had when it was evicted, if it is recorded.
func (r *evictionRecord) get(id string) (time.Time, bool) {
	e, ok := r.byID[id]
	return e.expires, ok
}

var (
	_ sessioncore.Store     = (*Store)(nil)
	_ sessioncore.Evictions = (*Store)(nil)
	_ sessioncore.UserIndex = (*Store)(nil)
)
