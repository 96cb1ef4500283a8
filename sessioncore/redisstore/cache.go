package redisstore

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// Client-side caching of loads (NewCached). go-redis keeps the replies of
// read commands in process memory and has Redis track the keys each
// connection read (RESP3 CLIENT TRACKING): when anyone changes or deletes
// a key, or it expires, Redis pushes an invalidation, which go-redis
// applies at the next command on that connection or, when the connection
// is idle, at its background drainer's next tick
// (CacheOptions.InvalidationCheck).
//
// That leaves one window go-redis does not close: a process that writes a
// session and reads it again before the invalidation is applied would read
// its old value, and a login followed at once by its redirect would look
// anonymous. So the store evicts each session it writes as soon as the
// write returns (Store.forget). go-redis names cached keys within a
// namespace of database and ACL user that it does not export; loadCache
// predicts it, and checks the prediction on every miss: a key outside it is
// fetched uncached, so a go-redis that names keys differently costs the
// cache, never a stale read.

// CacheOptions bound the client-side cache of NewCached.
type CacheOptions struct {
	// MaxEntries is the most sessions kept; the least recently used go
	// first.
	MaxEntries int
	// MaxBytes bounds the memory the kept sessions take, as go-redis
	// estimates it; 0: no bound but MaxEntries. go-redis splits it over 16
	// shards, and a session larger than a shard's share is not kept.
	MaxBytes int64
	// MaxStaleness is the longest a kept session is used without asking
	// Redis again, whatever the invalidations: it bounds how late an expiry
	// is noticed (Redis reports an expired key only when it deletes it, which
	// for a key nobody reads can be late) and what a lost invalidation costs.
	MaxStaleness time.Duration
	// InvalidationCheck is how often the invalidations that reached idle
	// connections are applied (go-redis's DrainInterval; its default, 5 ms,
	// when zero). Cache hits leave connections idle, so this bounds how late
	// a change made through another process is seen. Each check wakes the
	// process: an idle gateway spends about 2% of a core on checks every
	// 5 ms, 1.5% every 20 ms, 0.6% every 50 ms (measured on one core).
	InvalidationCheck time.Duration
}

// NewCached returns a store like New's whose loads go through a second
// client, made from reader (one Redis server, database 0) with go-redis's
// client-side caching: a session read again is answered from this
// process's memory, without a round trip, until Redis reports a change to
// it or opts.MaxStaleness passes. A change this process makes is read back
// at once; one made by another process is seen when its invalidation
// arrives, within milliseconds. Close closes the second client.
func NewCached(client redis.UniversalClient, reader redis.Options, opts CacheOptions, prefix string) (*Store, error) {
	if reader.DB != 0 {
		return nil, errors.New("client-side caching needs database 0: go-redis tracks keys of database 0 only")
	}
	if reader.CredentialsProvider != nil || reader.CredentialsProviderContext != nil || reader.StreamingCredentialsProvider != nil {
		return nil, errors.New("client-side caching needs a fixed user name and password")
	}
	cache := &loadCache{
		LocalCache: redis.NewLocalCache(redis.CacheConfig{MaxEntries: opts.MaxEntries, MaxMemoryBytes: opts.MaxBytes, MaxStaleness: opts.MaxStaleness, DrainInterval: opts.InvalidationCheck}),
		namespace:  cacheNamespace(reader.DB, reader.Username),
	}
	reader.Protocol = 3 // tracking's invalidations are RESP3 pushes
	reader.ClientSideCache = cache
	// go-redis reads the drainer's period from the config, even beside a
	// cache of one's own.
	reader.ClientSideCacheConfig = &redis.ClientSideCacheConfig{DrainInterval: opts.InvalidationCheck}
	readerClient := redis.NewClient(&reader)
	// Loads are not batched: go-redis neither reads nor fills the cache
	// for a pipeline, so batching would bypass it just when load is high.
	loads := &loadBatcher{client: readerClient, unbatched: true}
	return &Store{client: client, prefix: prefix, loads: loads, cache: cache, reader: readerClient}, nil
}

// Close closes the client that NewCached made; the client given to New or
// NewCached is the caller's to close.
func (s *Store) Close() error {
	if s.reader == nil {
		return nil
	}
	return s.reader.Close()
}

// CacheStats reports the client-side cache's hits and misses, and what it
// holds; zero without one.
func (s *Store) CacheStats() redis.CSCStats {
	if s.cache == nil {
		return redis.CSCStats{}
	}
	return s.cache.Stats()
}

// loadCache is go-redis's LocalCache, whose entries the store can evict by
// Redis key.
type loadCache struct {
	*redis.LocalCache
	namespace string // what go-redis puts before each Redis key
}

// cacheNamespace is the prefix go-redis gives the Redis keys it caches for
// database db and ACL user username.
func cacheNamespace(db int, username string) string {
	return strconv.Itoa(db) + "\x00" + strconv.Itoa(len(username)) + ":" + username + "\x00"
}

// Reserve implements redis.Cache. It caches only keys in the predicted
// namespace, which forget can evict.
func (c *loadCache) Reserve(cacheKey string, redisKeys []string) (uint64, bool) {
	for _, k := range redisKeys {
		if !strings.HasPrefix(k, c.namespace) {
			return 0, true // fetch, uncached
		}
	}
	return c.LocalCache.Reserve(cacheKey, redisKeys)
}

// forget evicts what the cache holds of Redis key key, and any fetch of it
// in flight, which then does not publish its answer.
func (c *loadCache) forget(key string) { c.DeleteByRedisKey(c.namespace + key) }

var (
	_ redis.Cache            = (*loadCache)(nil)
	_ sessioncore.FreshLoads = (*Store)(nil)
)
