package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/caddy-session/internal/redistest"
	"github.com/sessiongate/caddy-session/sessioncore"
	"github.com/sessiongate/caddy-session/sessioncore/storetest"
)

// pipelineCounter counts the pipelines a client sends.
type pipelineCounter struct{ pipelines atomic.Int64 }

func (*pipelineCounter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c *pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.pipelines.Add(1)
		return next(ctx, cmds)
	}
}

// Many concurrent loads are batched into pipelines, and each gets its own
// session; a few go alone.
func TestConcurrentLoadsAreBatched(t *testing.T) {
	server := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: server.Addr, PoolSize: 64})
	t.Cleanup(func() { client.Close() })
	counter := &pipelineCounter{}
	client.AddHook(counter)
	store := New(client, "batch:")
	ctx := context.Background()

	ids := make([]string, 500)
	for i := range ids {
		ids[i] = storetest.NewID(t)
		storetest.Commit(t, store, ids[i], sessioncore.Changes{Create: true, Set: map[string]json.RawMessage{"n": json.RawMessage(fmt.Sprint(i))}}, time.Hour)
	}

	// Alone, a load is one HGETALL.
	before := counter.pipelines.Load()
	storetest.ExpectValues(t, store, ids[0], `{"n":0}`)
	if counter.pipelines.Load() != before {
		t.Error("a lone load went as a pipeline")
	}

	start := make(chan struct{})
	var wg sync.WaitGroup
	for round := range 4 {
		for i, id := range ids {
			wg.Go(func() {
				<-start
				values, found, err := store.Load(ctx, id)
				if err != nil || !found || string(values["n"]) != fmt.Sprint(i) {
					t.Errorf("round %d, load %d: %s %v %v", round, i, values["n"], found, err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if counter.pipelines.Load() == before {
		t.Error("2,000 concurrent loads were never batched")
	}
	t.Logf("2,000 concurrent loads: %d pipelines", counter.pipelines.Load()-before)

	// A load whose context ends while it waits returns at once.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := store.Load(canceled, ids[1]); err == nil {
		t.Log("a canceled load still answered (it went alone)")
	}
}
