package redisstore

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/caddy-session/internal/redistest"
	"github.com/sessiongate/caddy-session/sessioncore"
	"github.com/sessiongate/caddy-session/sessioncore/storetest"
)

// BenchmarkLoad measures one load of a 200-byte session of three keys,
// from Redis on loopback and from the client-side cache (a hit).
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	server := redistest.Start(b)
	client := redis.NewClient(&redis.Options{Addr: server.Addr})
	defer client.Close()
	cached, err := NewCached(client, redis.Options{Addr: server.Addr}, CacheOptions{MaxEntries: 100, MaxStaleness: time.Minute}, "bench:")
	if err != nil {
		b.Fatal(err)
	}
	defer cached.Close()
	id := storetest.NewID(b)
	values := map[string]json.RawMessage{"role": json.RawMessage(`"editor"`), "user_id": json.RawMessage(`"u-12345"`),
		"pad": json.RawMessage(`"` + strings.Repeat("x", 130) + `"`)}
	if _, err := cached.Commit(ctx, id, sessioncore.Changes{Create: true, Set: values}, time.Hour); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		store *Store
	}{{"redis", New(client, "bench:")}, {"client cache hit", cached}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, found, err := tc.store.Load(ctx, id); err != nil || !found {
					b.Fatal(found, err)
				}
			}
		})
	}
}
