package caddymodule

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sessiongate/caddy-session/sessioncore"
	"github.com/sessiongate/caddy-session/sessioncore/memstore"
	"github.com/sessiongate/caddy-session/sessioncore/redisstore"
)

// StoreConfig says where sessions live.
type StoreConfig struct {
	// "cookie" (default: the whole session in the cookie), "memory" (this
	// process only) or "redis" (shared by every gateway that uses the same
	// Redis and key prefix).
	Type string `json:"type,omitempty"`

	// memory: the most sessions kept; expired ones are evicted first, then
	// the least recently used. Default: 100000.
	MaxSessions int `json:"max_sessions,omitempty"`
	// memory: the most bytes of sessions kept (their keys and values as
	// stored, and a fixed overhead each), evicting as MaxSessions does.
	// Default: 256 MiB.
	MaxMemory int64 `json:"max_memory,omitempty"`
	// memory and redis: the largest session, in bytes of its serialized
	// JSON; a change that would make it larger is refused (502).
	// Default: 64 KiB.
	MaxSessionSize int `json:"max_session_size,omitempty"`

	// redis: where Redis is. Each is redis://[user:pass@]host:port[/db],
	// rediss://... for TLS, or host:port. Several addresses mean a cluster,
	// or sentinels when MasterName is set. Default: redis://127.0.0.1:6379/0.
	Addresses []string `json:"addresses,omitempty"`
	// redis: the ACL user name. Placeholders are resolved when the config
	// loads.
	Username string `json:"username,omitempty"`
	// redis: the password. Placeholders are resolved when the config
	// loads: write {env.REDIS_PASSWORD} or {file./run/secrets/redis}, not
	// the password, which the admin API and autosave.json would show.
	Password string `json:"password,omitempty"`
	// redis: the sentinel master name.
	MasterName string `json:"master_name,omitempty"`
	// redis: the sentinels' own ACL user name, when it differs from the
	// master's. Placeholders as for Username.
	SentinelUsername string `json:"sentinel_username,omitempty"`
	// redis: the sentinels' own password, when it differs from the
	// master's. Placeholders as for Password.
	SentinelPassword string `json:"sentinel_password,omitempty"`
	// redis: the addresses are seeds of a Redis Cluster (one is enough,
	// such as a managed service's configuration endpoint).
	Cluster bool `json:"cluster,omitempty"`
	// redis: connect with TLS (as rediss:// does).
	TLS bool `json:"tls,omitempty"`
	// redis, with TLS: the PEM file of the CA that signs the server's
	// certificate. Default: the system's roots.
	TLSCA string `json:"tls_ca,omitempty"`
	// redis, with TLS: a client certificate (PEM file), for servers that
	// ask for one (tls-auth-clients); with TLSKey.
	TLSCert string `json:"tls_cert,omitempty"`
	// redis, with TLS: the client certificate's key (PEM file).
	TLSKey string `json:"tls_key,omitempty"`
	// redis, with TLS: the name to verify in the server's certificate.
	// Default: the host of each address.
	TLSServerName string `json:"tls_server_name,omitempty"`
	// redis: the database number (single server only).
	DB int `json:"db,omitempty"`
	// redis: the prefix of the session keys. Default: "session:".
	KeyPrefix string `json:"key_prefix,omitempty"`
	// redis, one server and database 0 only: keep up to this many sessions
	// read in this process's memory (go-redis's client-side caching), so
	// that a session read again costs no round trip. Redis reports every
	// change, deletion and expiry of a kept session (RESP3 tracking, Redis
	// 6 or newer); a change made through this gateway is read back at once,
	// one made through another within milliseconds, and a kept session is
	// asked for again at least every second. 0: off (the default).
	ClientCache int `json:"client_cache,omitempty"`
}

// Store types.
const (
	storeCookie = "cookie"
	storeMemory = "memory"
	storeRedis  = "redis"
)

const (
	defaultMaxSessions = 100_000
	defaultMaxMemory   = 256 << 20
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
	defaultKeyPrefix   = "session:"
	// defaultClientCache is client_cache's size when given without one.
	defaultClientCache = 10_000
	// clientCacheMemory bounds what client_cache holds, whatever the
	// number of sessions: 64 MiB, in which a session of 4 MiB still fits
	// (go-redis's cache is 16 shards, each with its share).
	clientCacheMemory = 64 << 20
	// clientCacheStaleness is the longest a session kept by client_cache
	// is used without asking Redis again.
	clientCacheStaleness = time.Second
	// clientCacheCheck is how often invalidations that reached idle
	// connections are applied: how late a change made through another
	// gateway can be seen.
	clientCacheCheck = 50 * time.Millisecond
)

// stores holds the server-side stores of every loaded config, shared by
// handlers with the same configuration and kept across reloads (so a
// reload logs nobody out of a memory store and reuses Redis connections).
// The admin API revokes sessions in all of them.
var stores = caddy.NewUsagePool()

// pooledStore is a store in the pool. Destruct runs when the last config
// that uses it is unloaded.
type pooledStore struct {
	sessioncore.Store
	bounds *memoryBounds // a memory store's, resized in place by a reload
	use    *storeUse
	close  func() error // nil: nothing to close
}

// memoryBounds are the bounds that the handlers using one memory store
// asked for. The store keeps the largest of each, so that no handler
// shrinks the sessions of another (two sites with one cookie name, or the
// old and the new config during a reload); a handler that is cleaned up (a
// config unloaded, or refused) takes its bounds with it, and the store is
// resized, evicting by what is left.
type memoryBounds struct {
	store *memstore.Store

	mu    sync.Mutex
	next  int
	asked map[int]memoryLimits
}

type memoryLimits struct {
	sessions int
	bytes    int64
}

// ask records a handler's bounds and returns what releases them.
func (b *memoryBounds) ask(l memoryLimits) (release func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	b.asked[id] = l
	b.apply()
	return sync.OnceFunc(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.asked, id)
		b.apply()
	})
}

// apply gives the store the largest bounds asked for; with none left, the
// store is about to go, and keeps what it had.
func (b *memoryBounds) apply() {
	var most memoryLimits
	for _, l := range b.asked {
		most.sessions, most.bytes = max(most.sessions, l.sessions), max(most.bytes, l.bytes)
	}
	if len(b.asked) > 0 {
		b.store.SetLimits(most.sessions, most.bytes)
	}
}

// storeUse counts the requests using a store right now.
type storeUse struct{ inflight atomic.Int64 }

func (u *storeUse) acquire() { u.inflight.Add(1) }
func (u *storeUse) release() { u.inflight.Add(-1) }

// How a store unloaded by a reload is closed: once no request has used it
// for storeQuietPeriod, checked every storeIdleCheck, or after
// storeCloseWait whatever holds it (a long poll, a WebSocket). The quiet
// period outlasts the 5 seconds net/http's Shutdown still gives a new
// connection to finish sending its request's header, which the old
// config then serves.
var (
	storeIdleCheck   = 250 * time.Millisecond
	storeQuietPeriod = 6 * time.Second
	storeCloseWait   = 10 * time.Minute
)

// Destruct implements caddy.Destructor. Caddy unloads a config on reload
// without waiting for its requests (its servers shut down in the
// background), so the store may still be in use: it closes once it is
// not. A server that is shutting down starts no new request, so a store
// that no request has used for a moment will not be used again.
func (p pooledStore) Destruct() error {
	if p.close != nil {
		go p.closeWhenIdle()
	}
	return nil
}

func (p pooledStore) closeWhenIdle() {
	start := time.Now()
	for lastBusy := start; time.Since(lastBusy) < storeQuietPeriod && time.Since(start) < storeCloseWait; {
		time.Sleep(storeIdleCheck)
		if p.use.inflight.Load() != 0 {
			lastBusy = time.Now()
		}
	}
	if err := p.close(); err != nil {
		caddy.Log().Named("http.handlers.session").Warn("closing an unloaded session store", zap.Error(err))
	}
}

// poolKey identifies a store in the pool. A memory store is the one of
// its cookie name, whatever its bounds, so that a reload that changes
// them keeps its sessions. A Redis store is its whole configuration as
// JSON, the secrets resolved, with a digest of its TLS files, so that
// files renewed in place make a new client; but not the session size
// bound, which is not the client's.
func (c StoreConfig) poolKey(cookieName string) string {
	if c.Type == storeMemory {
		return storeMemory + "/" + cookieName
	}
	c.MaxSessionSize = 0
	b, _ := json.Marshal(struct {
		StoreConfig
		TLSFiles string `json:"tls_files,omitempty"`
	}{c, tlsFilesDigest(&c)})
	return string(b)
}

// tlsFilesDigest returns a digest of the TLS files a Redis store reads. A
// file that cannot be read digests as empty; making the client reports it.
func tlsFilesDigest(c *StoreConfig) string {
	if c.Type != storeRedis || c.TLSCA == "" && c.TLSCert == "" && c.TLSKey == "" {
		return ""
	}
	h := sha256.New()
	for _, path := range []string{c.TLSCA, c.TLSCert, c.TLSKey} {
		data, _ := os.ReadFile(path)
		h.Write(data)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// resolveStoreConfig resolves the placeholders of every field that may
// hold one, once, before the store's pool key is made (so that a changed
// secret or a renewed file behind a placeholder makes a new client), and
// warns about passwords written in the config itself. Errors name the
// field, never its value.
func resolveStoreConfig(c *StoreConfig) (StoreConfig, error) {
	repl := caddy.NewReplacer()
	resolved := *c
	for _, f := range []struct {
		name  string
		field *string
	}{
		{"password", &resolved.Password}, {"username", &resolved.Username},
		{"sentinel_password", &resolved.SentinelPassword}, {"sentinel_username", &resolved.SentinelUsername},
		{"tls_ca", &resolved.TLSCA}, {"tls_cert", &resolved.TLSCert}, {"tls_key", &resolved.TLSKey},
		{"tls_server_name", &resolved.TLSServerName},
	} {
		v, err := repl.ReplaceOrErr(*f.field, false, true)
		if err != nil {
			return resolved, fmt.Errorf("store %s: it contains an unrecognized placeholder", f.name)
		}
		*f.field = v
	}
	resolved.Addresses = nil
	for _, a := range c.Addresses {
		address, err := repl.ReplaceOrErr(a, false, true)
		if err != nil {
			return resolved, errors.New("store address: it contains an unrecognized placeholder")
		}
		resolved.Addresses = append(resolved.Addresses, address)
	}
	log := caddy.Log().Named("http.handlers.session")
	for _, p := range []struct{ name, raw, resolved string }{
		{"password", c.Password, resolved.Password},
		{"sentinel_password", c.SentinelPassword, resolved.SentinelPassword},
	} {
		if p.raw != "" && p.raw == p.resolved {
			log.Warn("the store " + p.name + " is written in the config itself, where the admin API and autosave.json show it; use {env.*} or {file.*}")
		}
	}
	warnLiteralAddressPasswords(log, c.Addresses)
	return resolved, nil
}

// openStore returns the store the config asks for (a zero pooledStore for
// the cookie store) and what releases the handler's share of it, for
// Cleanup.
func openStore(c *StoreConfig, cookieName string) (pooledStore, func(), error) {
	if c == nil || c.Type == "" || c.Type == storeCookie {
		return pooledStore{}, func() {}, nil
	}
	if c.Type != storeRedis && c.ClientCache != 0 {
		return pooledStore{}, nil, fmt.Errorf("store client_cache: only a Redis store has one, not a %s store", c.Type)
	}
	resolved, err := resolveStoreConfig(c)
	if err != nil {
		return pooledStore{}, nil, err
	}
	key := resolved.poolKey(cookieName)
	value, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		switch resolved.Type {
		case storeMemory:
			memory := memstore.New(defaultMaxSessions, nil)
			memory.OnEvict(metrics.evictions.inc)
			bounds := &memoryBounds{store: memory, asked: map[int]memoryLimits{}}
			return pooledStore{Store: instrumentedStore{memory}, bounds: bounds, use: new(storeUse)}, nil
		case storeRedis:
			opts, err := redisOptions(&resolved)
			if err != nil {
				return nil, err
			}
			client := redis.NewUniversalClient(opts)
			prefix := cmp.Or(resolved.KeyPrefix, defaultKeyPrefix)
			if resolved.ClientCache == 0 {
				return pooledStore{Store: instrumentedStore{redisstore.New(client, prefix)}, use: new(storeUse), close: client.Close}, nil
			}
			store, err := newCachedRedisStore(&resolved, opts, client, prefix)
			if err != nil {
				client.Close()
				return nil, err
			}
			clientCaches.add(store)
			closeAll := func() error {
				clientCaches.retire(store)
				return errors.Join(store.Close(), client.Close())
			}
			return pooledStore{Store: instrumentedStore{store}, use: new(storeUse), close: closeAll}, nil
		}
		return nil, fmt.Errorf("unknown store type %q; want cookie, memory or redis", resolved.Type)
	})
	if err != nil {
		return pooledStore{}, nil, err
	}
	store := value.(pooledStore)
	releaseBounds := func() {}
	if store.bounds != nil {
		releaseBounds = store.bounds.ask(memoryLimits{cmp.Or(resolved.MaxSessions, defaultMaxSessions), cmp.Or(resolved.MaxMemory, defaultMaxMemory)})
	}
	return store, sync.OnceFunc(func() {
		releaseBounds()
		_, _ = stores.Delete(key)
	}), nil
}

// newCachedRedisStore returns the Redis store of c with client_cache on:
// loads go through a second client, made from opts, to the same server,
// that keeps what it read (redisstore.NewCached).
func newCachedRedisStore(c *StoreConfig, opts *redis.UniversalOptions, client redis.UniversalClient, prefix string) (*redisstore.Store, error) {
	if c.ClientCache < 0 {
		return nil, errors.New("store client_cache: the number of sessions kept must be positive")
	}
	if c.Cluster || c.MasterName != "" || len(c.Addresses) > 1 {
		return nil, errors.New("store client_cache: needs a single Redis server; go-redis's client-side caching does not follow sentinels or clusters")
	}
	store, err := redisstore.NewCached(client, *opts.Simple(),
		redisstore.CacheOptions{MaxEntries: c.ClientCache, MaxBytes: clientCacheMemory, MaxStaleness: clientCacheStaleness, InvalidationCheck: clientCacheCheck}, prefix)
	if err != nil {
		return nil, fmt.Errorf("store client_cache: %w", err)
	}
	return store, nil
}
