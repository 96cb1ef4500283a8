package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStartCluster(t *testing.T) {
	c := StartCluster(t)
	ctx := context.Background()
	client := c.Client(t)
	seen := map[string]bool{}
	for i := range 30 {
		key := fmt.Sprintf("k%d", i)
		if err := client.Set(ctx, key, i, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		slot, _ := client.ClusterKeySlot(ctx, key).Result()
		seen[fmt.Sprint(slot*3/16384)] = true
	}
	if len(seen) != 3 {
		t.Errorf("30 keys went to %d of the 3 masters", len(seen))
	}
	// A plain client of the seed alone is redirected for keys it does not own.
	plain := redis.NewClient(&redis.Options{Addr: c.Seed(), MaxRetries: -1})
	defer plain.Close()
	moved := 0
	for i := range 30 {
		if err := plain.Get(ctx, fmt.Sprintf("k%d", i)).Err(); err != nil && strings.HasPrefix(err.Error(), "MOVED") {
			moved++
		}
	}
	if moved == 0 {
		t.Error("no MOVED from the seed: is it a cluster?")
	}
}

func TestStartSentinelGroupFailsOver(t *testing.T) {
	g := StartSentinelGroup(t, "mymaster", WithPassword("master-pw"), WithSentinelPassword("sentinel-pw"))
	if got := g.MasterAddr(t); got != g.Master.Addr {
		t.Fatalf("master %s, want %s", got, g.Master.Addr)
	}
	// The sentinels ask for their password.
	noAuth := redis.NewSentinelClient(&redis.Options{Addr: g.Sentinels[0].Addr})
	defer noAuth.Close()
	if err := noAuth.Ping(context.Background()).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("a sentinel answered without the password: %v", err)
	}
	start := time.Now()
	if now := g.Failover(t); now != g.Replica.Addr {
		t.Fatalf("after the failover the master is %s, want the replica %s", now, g.Replica.Addr)
	}
	t.Logf("failover took %s", time.Since(start).Round(time.Millisecond))
}

func TestStartTLS(t *testing.T) {
	s := StartTLS(t)
	ctx := context.Background()
	with := redis.NewClient(&redis.Options{Addr: s.Addr, TLSConfig: s.ClientTLS(t), MaxRetries: -1})
	defer with.Close()
	if err := with.Ping(ctx).Err(); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	config := s.ClientTLS(t)
	config.Certificates = nil
	without := redis.NewClient(&redis.Options{Addr: s.Addr, TLSConfig: config, MaxRetries: -1})
	defer without.Close()
	if err := without.Ping(ctx).Err(); err == nil {
		t.Error("a client without a certificate got in")
	}
	plain := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, ReadTimeout: 500 * time.Millisecond})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Error("a client without TLS got in")
	}
}
