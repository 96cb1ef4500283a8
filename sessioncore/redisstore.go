package sessioncore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps each session in a Redis hash, one field per top-level
// key, under KeyPrefix + ID. A request's changes are applied in one
// MULTI/EXEC transaction (HDEL and HSET of just the keys it touched, then
// EXPIRE), so concurrent requests that change different keys of one session
// all persist, and several gateways can share the sessions.
type RedisStore struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisStore returns a store that uses client (go-redis's universal
// client: a single server, a cluster or a sentinel-managed master) and
// keeps sessions under keys that start with prefix.
func NewRedisStore(client redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{client: client, prefix: prefix}
}

func (s *RedisStore) key(id string) string { return s.prefix + id }

// Load implements Store.
func (s *RedisStore) Load(ctx context.Context, id string) (map[string]json.RawMessage, bool, error) {
	fields, err := s.client.HGetAll(ctx, s.key(id)).Result()
	if err != nil {
		return nil, false, fmt.Errorf("%w: loading a session: %w", ErrStore, err)
	}
	if len(fields) == 0 {
		return nil, false, nil
	}
	values := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		if !validStoredValue([]byte(v)) {
			return nil, false, fmt.Errorf("%w: the stored value of key %q is not normalized JSON", ErrUndecodable, k)
		}
		values[k] = json.RawMessage(v)
	}
	return values, true, nil
}

// Commit implements Store.
func (s *RedisStore) Commit(ctx context.Context, id string, c Changes, ttl time.Duration) error {
	key := s.key(id)
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if c.Clear {
			p.Del(ctx, key)
		}
		if len(c.Deleted) > 0 {
			p.HDel(ctx, key, c.Deleted...)
		}
		if len(c.Set) > 0 {
			args := make([]any, 0, 2*len(c.Set))
			for k, v := range c.Set {
				args = append(args, k, string(v))
			}
			p.HSet(ctx, key, args...)
		}
		p.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: saving a session: %w", ErrStore, err)
	}
	return nil
}

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, id string) (bool, error) {
	n, err := s.client.Del(ctx, s.key(id)).Result()
	if err != nil {
		return false, fmt.Errorf("%w: deleting a session: %w", ErrStore, err)
	}
	return n > 0, nil
}

// TTL returns how long the session id has left, for tests and tools.
func (s *RedisStore) TTL(ctx context.Context, id string) (time.Duration, error) {
	return s.client.PTTL(ctx, s.key(id)).Result()
}

var _ Store = (*RedisStore)(nil)
