package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/sessiongate/caddy-session/sessioncore"
	"github.com/sessiongate/caddy-session/sessioncore/memstore"
	"github.com/sessiongate/caddy-session/sessioncore/redisstore"
)

// RevocationStoreConfig says where the per-user revocation map lives:
// "memory" for one instance, "redis" (with the options of a Redis store)
// for a fleet.
type RevocationStoreConfig struct {
	StoreConfig

	// How stale a cutoff read from the map may be: each instance answers
	// lookups from a local cache this long, so that a read costs no round
	// trip in the common case, and a revocation reaches every instance
	// within it. Default: 1s.
	Staleness caddy.Duration `json:"staleness,omitempty"`
}

const (
	defaultRevocationStaleness = time.Second
	defaultRevocationPrefix    = "session-revoked:" // then the cookie's name, so sites on one Redis keep apart
)

// parseRevocationStore reads
//
//	revocation_store memory
//	revocation_store redis {
//		<the options of store redis>
//		staleness <duration>
//	}
func parseRevocationStore(p *caddyfileParser, d *caddyfile.Dispenser) error {
	rc := &RevocationStoreConfig{}
	store, err := parseStoreOf(d, map[string]func() error{
		"staleness": func() (err error) { rc.Staleness, err = durationArg(d); return err },
	}, storeMemory, storeRedis)
	if err != nil {
		return err
	}
	if store.MaxSessions != 0 || store.MaxMemory != 0 || store.MaxSessionSize != 0 {
		return d.Errf("revocation_store takes no session bounds")
	}
	if store.ClientCache != 0 {
		return d.Errf("revocation_store takes no client_cache: the revocation map keeps its own, bounded by staleness")
	}
	rc.StoreConfig = *store
	p.h.RevocationStore = rc
	return nil
}

// revocationMaps holds the revocation maps of every loaded config, shared
// like the stores (see stores), so the admin API can revoke a user in all
// of them.
var revocationMaps = caddy.NewUsagePool()

// pooledRevocations is a revocation map in the pool, with the longest
// lifetime of the handlers using it, which is how long a revocation must
// last.
type pooledRevocations struct {
	sessioncore.Revocations
	close func() error
}

// Destruct implements caddy.Destructor.
func (p pooledRevocations) Destruct() error {
	if p.close != nil {
		go func() { // as a store: once the requests of the old config are done
			time.Sleep(storeQuietPeriod)
			_ = p.close()
		}()
	}
	return nil
}

// openRevocations returns the configured revocation map and what releases
// the handler's share of it.
func openRevocations(c *RevocationStoreConfig, cookieName string) (sessioncore.Revocations, func(), error) {
	if c == nil {
		return nil, func() {}, nil
	}
	if c.ClientCache != 0 {
		return nil, nil, errors.New("revocation_store takes no client_cache: the revocation map keeps its own, bounded by staleness")
	}
	resolved, err := resolveStoreConfig(&c.StoreConfig)
	if err != nil {
		return nil, nil, fmt.Errorf("revocation_store: %w", err)
	}
	key := "revocations/" + resolved.poolKey(cookieName)
	value, _, err := revocationMaps.LoadOrNew(key, func() (caddy.Destructor, error) {
		switch resolved.Type {
		case storeMemory:
			return pooledRevocations{Revocations: memstore.NewRevocations(nil)}, nil
		case storeRedis:
			client, err := newRedisClient(&resolved)
			if err != nil {
				return nil, err
			}
			prefix := resolved.KeyPrefix
			if prefix == "" {
				prefix = defaultRevocationPrefix + cookieName + ":"
			}
			return pooledRevocations{Revocations: redisstore.NewRevocations(client, prefix), close: client.Close}, nil
		}
		return nil, fmt.Errorf("revocation_store must be memory or redis, not %q", resolved.Type)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("revocation_store: %w", err)
	}
	return value.(pooledRevocations).Revocations, func() { _, _ = revocationMaps.Delete(key) }, nil
}

// revokeUserEverywhere sets the user's cutoff in every revocation map of
// the loaded configs, for the admin API, and returns how many it reached.
func revokeUserEverywhere(ctx context.Context, user string, ttl time.Duration) (int, error) {
	var all []sessioncore.Revocations
	revocationMaps.Range(func(_, value any) bool {
		all = append(all, value.(pooledRevocations).Revocations)
		return true
	})
	reached := 0
	var errs []error
	cutoff := sessioncore.EndOfSecond(time.Now()) // every session up to now, this second's included
	for _, r := range all {
		if err := r.Revoke(ctx, user, cutoff, ttl); err != nil {
			errs = append(errs, err)
			continue
		}
		reached++
	}
	return reached, errors.Join(errs...)
}
