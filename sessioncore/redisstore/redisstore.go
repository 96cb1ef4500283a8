// Package redisstore keeps sessions in Redis (a single server, a cluster
// or a sentinel-managed master), shared by every gateway that uses the
// same Redis and key prefix.
package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// Store keeps each session in a Redis hash, one field per top-level
// key, under KeyPrefix + ID. A request's changes are applied in one
// MULTI/EXEC transaction (HDEL and HSET of just the keys it touched, then
// EXPIRE), so concurrent requests that change different keys of one session
// all persist, and several gateways can share the sessions.
type Store struct {
	client redis.UniversalClient
	prefix string
	loads  *loadBatcher
	// cache and reader, for NewCached: the client-side cache of loads and
	// the client they go through; nil otherwise.
	cache  *loadCache
	reader *redis.Client
}

// New returns a store that uses client (go-redis's universal
// client: a single server, a cluster or a sentinel-managed master) and
// keeps sessions under keys that start with prefix.
func New(client redis.UniversalClient, prefix string) *Store {
	return &Store{client: client, prefix: prefix, loads: &loadBatcher{client: client}}
}

// forget evicts the session id from the client-side cache, after a write
// to it: the write has reached Redis, so a read that starts now sees it,
// and one in flight from before cannot publish its older answer (the
// cache drops its reservation too).
func (s *Store) forget(id string) {
	if s.cache != nil {
		s.cache.forget(s.key(id))
	}
}

func (s *Store) key(id string) string { return s.prefix + id }

// Load implements Store.
func (s *Store) Load(ctx context.Context, id string) (map[string]json.RawMessage, bool, error) {
	fields, err := s.loads.hgetall(ctx, s.key(id))
	return storedValues(fields, err)
}

// LoadFresh implements sessioncore.FreshLoads: it asks Redis, whatever
// the client-side cache holds.
func (s *Store) LoadFresh(ctx context.Context, id string) (map[string]json.RawMessage, bool, error) {
	if s.cache == nil {
		return s.Load(ctx, id)
	}
	return storedValues(s.client.HGetAll(ctx, s.key(id)).Result())
}

// storedValues checks a session's fields as HGETALL returned them.
func storedValues(fields map[string]string, err error) (map[string]json.RawMessage, bool, error) {
	if err != nil {
		return nil, false, fmt.Errorf("%w: loading a session: %w", sessioncore.ErrStore, err)
	}
	if len(fields) == 0 {
		return nil, false, nil
	}
	// The values share one buffer: one allocation, not one each.
	size := 0
	for _, v := range fields {
		size += len(v)
	}
	buf := make([]byte, 0, size)
	values := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		start := len(buf)
		buf = append(buf, v...)
		value := buf[start:len(buf):len(buf)] // an append to one cannot reach the next
		if !sessioncore.ValidStoredValue(value) {
			return nil, false, fmt.Errorf("%w: the stored value of key %q is not normalized JSON", sessioncore.ErrUndecodable, k)
		}
		values[k] = value
	}
	return values, true, nil
}

// commitScript applies one request's changes in one step, server-side:
// nothing to an ID that is gone unless asked to create it, so a request
// still running cannot bring back a session another one renewed, revoked
// or emptied.
//
//	KEYS[1] the session; ARGV: create, clear, ttl in ms, number of keys to
//	delete, those keys, then field/value pairs to set. Clear keeps the
//	private fields, which begin with a NUL byte.
var commitScript = redis.NewScript(`
local key = KEYS[1]
if ARGV[1] == '0' and redis.call('EXISTS', key) == 0 then return 0 end
if ARGV[2] == '1' then
  local values = {}
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.byte(field, 1) ~= 0 then
      values[#values + 1] = field
      if #values == 1000 then redis.call('HDEL', key, unpack(values)); values = {} end
    end
  end
  if #values > 0 then redis.call('HDEL', key, unpack(values)) end
end
local ndel = tonumber(ARGV[4])
if ndel > 0 then redis.call('HDEL', key, unpack(ARGV, 5, 4 + ndel)) end
if #ARGV > 4 + ndel then redis.call('HSET', key, unpack(ARGV, 5 + ndel)) end
if redis.call('EXISTS', key) == 0 then return 0 end
redis.call('PEXPIRE', key, ARGV[3])
return 1
`)

// Commit implements Store.
func (s *Store) Commit(ctx context.Context, id string, c sessioncore.Changes, ttl time.Duration) (bool, error) {
	defer s.forget(id) // also on error: the script may have run
	args := make([]any, 0, 4+len(c.Deleted)+2*len(c.Set))
	args = append(args, boolArg(c.Create), boolArg(c.Clear), ttl.Milliseconds(), len(c.Deleted))
	for _, k := range c.Deleted {
		args = append(args, k)
	}
	for k, v := range c.Set {
		args = append(args, k, string(v))
	}
	exists, err := commitScript.Run(ctx, s.client, []string{s.key(id)}, args...).Int()
	if err != nil {
		return false, fmt.Errorf("%w: saving a session: %w", sessioncore.ErrStore, err)
	}
	if exists == 1 && c.Owner != nil {
		if err := s.index(ctx, id, c.Owner, ttl); err != nil {
			return true, err
		}
	}
	return exists == 1, nil
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Delete implements Store.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	defer s.forget(id)
	n, err := s.client.Del(ctx, s.key(id)).Result()
	if err != nil {
		return false, fmt.Errorf("%w: deleting a session: %w", sessioncore.ErrStore, err)
	}
	return n > 0, nil
}

// TTL returns how long the session id has left, for tests and tools.
func (s *Store) TTL(ctx context.Context, id string) (time.Duration, error) {
	return s.client.PTTL(ctx, s.key(id)).Result()
}

var _ sessioncore.Store = (*Store)(nil)
