package sessioncore

import (
	"container/list"
	"context"
	"encoding/json"
	"maps"
	"sync"
	"time"
)

// MemoryStore keeps sessions in this process, for a single instance. It
// holds at most a fixed number of sessions, evicting the least recently
// used; expired sessions are dropped when they are looked up, and a few at
// the cold end of the list on every write, so no operation scans them all.
type MemoryStore struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element // of *memoryEntry
	lru     *list.List               // front: most recently used
}

type memoryEntry struct {
	id      string
	values  map[string]json.RawMessage
	expires time.Time
}

// NewMemoryStore returns a store of at most maxSessions sessions. now is
// its clock; nil means time.Now.
func NewMemoryStore(maxSessions int, now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{max: max(maxSessions, 1), now: now, entries: map[string]*list.Element{}, lru: list.New()}
}

// Load implements Store.
func (m *MemoryStore) Load(_ context.Context, id string) (map[string]json.RawMessage, bool, error) {
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
func (m *MemoryStore) Commit(_ context.Context, id string, c Changes, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep()
	e := m.live(id)
	switch {
	case e == nil && !c.Create:
		return false, nil
	case e == nil:
		e = &memoryEntry{id: id, values: map[string]json.RawMessage{}}
		for len(m.entries) >= m.max {
			m.remove(m.lru.Back().Value.(*memoryEntry).id)
		}
		m.entries[id] = m.lru.PushFront(e)
	default:
		m.lru.MoveToFront(m.entries[id])
	}
	if c.Clear {
		clear(e.values)
	}
	for k, v := range c.Set {
		e.values[k] = v
	}
	for _, k := range c.Deleted {
		delete(e.values, k)
	}
	if len(e.values) == 0 {
		m.remove(id)
		return false, nil
	}
	e.expires = m.now().Add(ttl)
	return true, nil
}

// Delete implements Store.
func (m *MemoryStore) Delete(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	found := m.live(id) != nil
	m.remove(id)
	return found, nil
}

// Len returns the number of sessions held, expired ones included until
// they are evicted.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// live returns the unexpired entry of id, evicting it if it has expired.
func (m *MemoryStore) live(id string) *memoryEntry {
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
func (m *MemoryStore) sweep() {
	now := m.now()
	for range 4 {
		back := m.lru.Back()
		if back == nil || now.Before(back.Value.(*memoryEntry).expires) {
			return
		}
		m.remove(back.Value.(*memoryEntry).id)
	}
}

func (m *MemoryStore) remove(id string) {
	if el, ok := m.entries[id]; ok {
		m.lru.Remove(el)
		delete(m.entries, id)
	}
}

var _ Store = (*MemoryStore)(nil)
