package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiongate/caddy-session/sessioncore"
	"github.com/sessiongate/caddy-session/sessioncore/memstore"
	"github.com/sessiongate/caddy-session/sessioncore/redisstore"
)

// The gateway's metrics. They are package-level, so that their counts
// survive config reloads, and registered again with the registry of every
// config that loads (Caddy gives each a fresh one). Every label has a small,
// fixed set of values: never a session ID or a user.
var metrics = struct {
	opened          counters
	cookies         counters
	mutations       counters
	withheld        counters
	evictions       counters
	revocations     counters
	indexUsers      prometheus.GaugeFunc
	cacheHits       prometheus.CounterFunc
	cacheMisses     prometheus.CounterFunc
	oidcLogins      prometheus.Counter
	oidcFailures    counters
	oidcBackChannel counters
	oidcRefreshes   counters
	cookieSize      prometheus.Histogram
	storeDuration   *prometheus.HistogramVec
	storeErrors     *prometheus.CounterVec
}{
	opened: newCounters(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "opened_total",
		Help: "Sessions opened, by outcome: new, valid, fallback_key, bad_signature, expired, revoked, undecodable, unknown_id, unavailable, too_large, migrated.",
	}, "outcome", "new", "valid", "fallback_key", "bad_signature", "expired", "revoked", "undecodable", "unknown_id", "unavailable", "too_large", "migrated"),
	cookies: newCounters(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "cookies_total",
		Help: "Session cookies written, by action: set (changed), refreshed (expiry moved), deleted, suppressed (refused: the response was rejected).",
	}, "action", "set", "refreshed", "deleted", "suppressed"),
	mutations: newCounters(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "mutations_total",
		Help: "Session changes asked for by upstreams, by result: applied or rejected.",
	}, "result", "applied", "rejected"),
	withheld: newCounters(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "forward_withheld_total",
		Help: "Session values not sent in a forward header because the upstream would read them otherwise, by reason: control, bidi, non_ascii, blank.",
	}, "reason", sessioncore.WithheldReasons...),
	evictions: newCounters(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "store_evictions_total",
		Help: "Sessions a memory store evicted to stay within its bounds, by cause: max_sessions, max_memory.",
	}, "cause", memstore.EvictionCauses...),
	revocations: newCounters(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "user_revocations_total",
		Help: "Per-user revocations, by kind and origin: others/app and all/app (X-Session-Revoke), user/admin (the admin API).",
	}, "kind_origin", "others/app", "all/app", "user/admin"),
	indexUsers: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "session", Name: "index_users",
		Help: "Users in the user index of the memory stores (Redis keeps its index itself).",
	}, memoryIndexUsers),
	cacheHits: prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "client_cache_hits_total",
		Help: "Session loads a Redis store's client_cache answered from memory.",
	}, func() float64 { hits, _ := clientCaches.counts(); return float64(hits) }),
	cacheMisses: prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "client_cache_misses_total",
		Help: "Session loads a Redis store's client_cache had to ask Redis for.",
	}, func() float64 { _, misses := clientCaches.counts(); return float64(misses) }),
	oidcLogins: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "oidc_logins_total",
		Help: "Logins completed against the OpenID provider.",
	}),
	oidcFailures: newCounters(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "oidc_login_failures_total",
		Help: "Logins refused at their start or callback, by reason (see the README).",
	}, "reason", oidcFailureReasons...),
	oidcBackChannel: newCounters(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "oidc_backchannel_logouts_total",
		Help: "Back-channel logout requests from the OpenID provider, by result: revoked, rejected, failed (the revocation could not be saved), unavailable.",
	}, "result", "revoked", "rejected", "failed", "unavailable"),
	oidcRefreshes: newCounters(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "oidc_token_refreshes_total",
		Help: "Refreshes of a login's access token (store modes), by result: refreshed, superseded (another request or instance refreshed it first), refused (the login ends), failed (the provider could not be reached; tried again on the next request).",
	}, "result", "refreshed", "superseded", "refused", "failed"),
	cookieSize: prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "session", Name: "cookie_size_bytes",
		Help:    "Size of the Set-Cookie lines that carry a session.",
		Buckets: []float64{128, 256, 512, 1024, 2048, 3072, 4096},
	}),
	storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "session", Name: "store_duration_seconds",
		Help:    "Latency of session store operations, by operation: load, commit, delete.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
	}, []string{"op"}),
	storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "session", Name: "store_errors_total",
		Help: "Failed session store operations, by operation: load, commit, delete.",
	}, []string{"op"}),
}

// counters is a CounterVec of one label whose values are known in advance:
// each child is resolved once, where WithLabelValues would hash the value
// and take a lock on every request, and every value is exported from the
// start, at zero.
type counters struct {
	vec      *prometheus.CounterVec
	children map[string]prometheus.Counter // read-only once made
}

func newCounters(opts prometheus.CounterOpts, label string, values ...string) counters {
	c := counters{vec: prometheus.NewCounterVec(opts, []string{label}), children: map[string]prometheus.Counter{}}
	for _, v := range values {
		c.children[v] = c.vec.WithLabelValues(v)
	}
	return c
}

// inc counts one event with the label value v.
func (c counters) inc(v string) {
	if child, ok := c.children[v]; ok {
		child.Inc()
		return
	}
	c.vec.WithLabelValues(v).Inc()
}

// registerMetrics registers the metrics with a config's registry; a
// second session handler in the same config finds them registered.
func registerMetrics(registry *prometheus.Registry) error {
	if registry == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{metrics.opened.vec, metrics.cookies.vec, metrics.mutations.vec, metrics.withheld.vec, metrics.evictions.vec, metrics.revocations.vec, metrics.indexUsers, metrics.cacheHits, metrics.cacheMisses, metrics.oidcLogins, metrics.oidcFailures.vec, metrics.oidcBackChannel.vec, metrics.oidcRefreshes.vec,
		metrics.cookieSize, metrics.storeDuration, metrics.storeErrors} {
		if err := registry.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}

// cookieAction names what a save did to the cookie, for the metrics.
func cookieAction(action sessioncore.CookieAction, modified bool) string {
	switch {
	case action == sessioncore.CookieSet && !modified:
		return "refreshed"
	default:
		return string(action)
	}
}

// instrumentedStore measures a store's operations.
type instrumentedStore struct {
	sessioncore.Store
}

func observe(op string, start time.Time, err error) {
	metrics.storeDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && errors.Is(err, sessioncore.ErrStore) {
		metrics.storeErrors.WithLabelValues(op).Inc()
	}
}

func (s instrumentedStore) Load(ctx context.Context, id string) (map[string]json.RawMessage, bool, error) {
	start := time.Now()
	values, found, err := s.Store.Load(ctx, id)
	observe("load", start, err)
	return values, found, err
}

var _ sessioncore.FreshLoads = instrumentedStore{}

// LoadFresh implements sessioncore.FreshLoads.
func (s instrumentedStore) LoadFresh(ctx context.Context, id string) (map[string]json.RawMessage, bool, error) {
	start := time.Now()
	values, found, err := sessioncore.LoadFresh(ctx, s.Store, id)
	observe("load", start, err)
	return values, found, err
}

func (s instrumentedStore) Commit(ctx context.Context, id string, c sessioncore.Changes, ttl time.Duration) (bool, error) {
	start := time.Now()
	exists, err := s.Store.Commit(ctx, id, c, ttl)
	observe("commit", start, err)
	return exists, err
}

// Sessions implements sessioncore.UserIndex for a store that keeps one;
// any other lists nothing.
func (s instrumentedStore) Sessions(ctx context.Context, user string) ([]sessioncore.SessionInfo, error) {
	index, ok := s.Store.(sessioncore.UserIndex)
	if !ok {
		return nil, nil
	}
	start := time.Now()
	infos, err := index.Sessions(ctx, user)
	observe("load", start, err)
	return infos, err
}

// Restore implements sessioncore.Evictions for a store that evicts; any
// other restores nothing.
func (s instrumentedStore) Restore(ctx context.Context, id string, values map[string]json.RawMessage, c sessioncore.Changes, ttl time.Duration) (bool, error) {
	ev, ok := s.Store.(sessioncore.Evictions)
	if !ok {
		return false, nil
	}
	start := time.Now()
	exists, err := ev.Restore(ctx, id, values, c, ttl)
	observe("commit", start, err)
	return exists, err
}

func (s instrumentedStore) Delete(ctx context.Context, id string) (bool, error) {
	start := time.Now()
	found, err := s.Store.Delete(ctx, id)
	observe("delete", start, err)
	return found, err
}

// memoryIndexUsers adds up the users the memory stores index.
func memoryIndexUsers() float64 {
	users := 0
	stores.Range(func(_, value any) bool {
		if p := value.(pooledStore); p.bounds != nil {
			users += p.bounds.store.Users()
		}
		return true
	})
	return float64(users)
}

// clientCaches are the Redis stores with a client_cache, for the metrics.
// A store that closes hands its counts to retired, in the same step, so
// that the counters never go back.
var clientCaches = &cacheRegistry{live: map[*redisstore.Store]struct{}{}}

type cacheRegistry struct {
	mu                         sync.Mutex
	live                       map[*redisstore.Store]struct{}
	retiredHits, retiredMisses uint64
}

func (c *cacheRegistry) add(s *redisstore.Store) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live[s] = struct{}{}
}

// retire counts s's hits and misses among the retired ones.
func (c *cacheRegistry) retire(s *redisstore.Store) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.live[s]; ok {
		stats := s.CacheStats()
		c.retiredHits += stats.Hits
		c.retiredMisses += stats.Misses
		delete(c.live, s)
	}
}

// counts adds up the hits and misses of every client cache, open or
// closed, since Caddy started.
func (c *cacheRegistry) counts() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hits, misses = c.retiredHits, c.retiredMisses
	for s := range c.live {
		stats := s.CacheStats()
		hits += stats.Hits
		misses += stats.Misses
	}
	return hits, misses
}
