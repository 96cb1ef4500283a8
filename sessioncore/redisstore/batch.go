package redisstore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Loads under high concurrency. Each Load is one HGETALL round trip, and
// go-redis holds a pooled connection for each. When more Loads are in
// flight than maxInflight, those that arrive meanwhile wait for the next
// free slot and go together, as one pipeline: one round trip, one write
// and one read system call on each side for the lot. Below that, a Load
// goes at once, alone, as before: batching costs nothing when it does not
// pay.

// maxInflight is how many round trips of loads run at once before loads
// wait to be batched: about go-redis's pool with one processor.
const maxInflight = 8

// maxBatch bounds one pipeline.
const maxBatch = 128

// batchTimeout bounds a pipeline; each Load also stops at its own
// context's end.
const batchTimeout = 5 * time.Second

// loadBatcher runs HGETALLs, alone or batched.
type loadBatcher struct {
	client redis.UniversalClient
	// unbatched sends every load alone (a client with a client-side
	// cache, which pipelines bypass).
	unbatched bool

	mu       sync.Mutex
	inflight int
	pending  []*loadCall
}

// loadCall is one Load waiting for its result.
type loadCall struct {
	key    string
	fields map[string]string
	err    error
	done   chan struct{}
}

// hgetall returns the fields of the hash at key.
func (b *loadBatcher) hgetall(ctx context.Context, key string) (map[string]string, error) {
	if b.unbatched {
		return b.client.HGetAll(ctx, key).Result()
	}
	b.mu.Lock()
	if b.inflight < maxInflight {
		b.inflight++
		b.mu.Unlock()
		fields, err := b.client.HGetAll(ctx, key).Result()
		b.release()
		return fields, err
	}
	call := &loadCall{key: key, done: make(chan struct{})}
	b.pending = append(b.pending, call)
	b.mu.Unlock()
	select {
	case <-call.done:
		return call.fields, call.err
	case <-ctx.Done():
		return nil, ctx.Err() // the batch still runs; its result for this call is dropped
	}
}

// release frees a slot, and hands it to the loads that waited, as one
// batch.
func (b *loadBatcher) release() {
	b.mu.Lock()
	if len(b.pending) == 0 {
		b.inflight--
		b.mu.Unlock()
		return
	}
	n := min(len(b.pending), maxBatch)
	batch := b.pending[:n:n]
	b.pending = b.pending[n:]
	b.mu.Unlock()
	go b.run(batch) // keeps the slot
}

// run sends batch as one pipeline, then releases its slot.
func (b *loadBatcher) run(batch []*loadCall) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	cmds := make([]*redis.MapStringStringCmd, len(batch))
	_, _ = b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, call := range batch {
			cmds[i] = p.HGetAll(ctx, call.key)
		}
		return nil
	})
	cancel()
	for i, call := range batch {
		call.fields, call.err = cmds[i].Result()
		close(call.done)
	}
	b.release()
}
