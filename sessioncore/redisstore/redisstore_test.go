package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/caddy-session/internal/redistest"
	"github.com/sessiongate/caddy-session/sessioncore"
	"github.com/sessiongate/caddy-session/sessioncore/storetest"
)

func TestContract(t *testing.T) {
	server := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: server.Addr})
	t.Cleanup(func() { client.Close() })
	storetest.Run(t, func(t *testing.T) sessioncore.Store { return New(client, "test:"+storetest.NewID(t)+":") })
}

func TestRedisStoreExpiresWithTheLifetime(t *testing.T) {
	ctx := context.Background()
	server := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: server.Addr})
	defer client.Close()
	store := New(client, "ttl:")
	id := storetest.NewID(t)
	storetest.Commit(t, store, id, sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"a": json.RawMessage(`1`)}}, 90*time.Minute)
	if ttl, err := store.TTL(ctx, id); err != nil || ttl <= 89*time.Minute || ttl > 90*time.Minute {
		t.Errorf("TTL %s, %v", ttl, err)
	}
	// A refresh moves the expiry without touching the values.
	storetest.Commit(t, store, id, sessioncore.Changes{}, 3*time.Hour)
	if ttl, _ := store.TTL(ctx, id); ttl <= 2*time.Hour {
		t.Errorf("TTL after refresh %s", ttl)
	}
	// A value that is not JSON (written by someone else) is refused.
	client.HSet(ctx, "ttl:"+id, "bad", "not json\r\nX-Injected: 1")
	if _, _, err := store.Load(ctx, id); !errors.Is(err, sessioncore.ErrUndecodable) {
		t.Errorf("Load of a foreign value: %v", err)
	}
}
