package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of three masters without replicas, the hash
// slots split evenly between them.
type Cluster struct {
	Nodes []*Server
}

// Seed is the address of one node, as a managed service's configuration
// endpoint would give it: a client in cluster mode learns the others from
// it.
func (c *Cluster) Seed() string { return c.Nodes[0].Addr }

// Addrs are the addresses of all the nodes.
func (c *Cluster) Addrs() []string {
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.Addr)
	}
	return addrs
}

// Client is a cluster client of the test, closed when it ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { client.Close() })
	return client
}

// StartCluster runs three redis-server processes in cluster mode on free
// loopback ports, gives each a third of the slots, introduces them to each
// other and waits until every node sees the cluster as ok (a second or
// two). Without redis-server the test fails when CI=true and is skipped
// otherwise.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	need(t, "redis-server", "redis-server")
	c := &Cluster{}
	for _, port := range FreePorts(t, 3) {
		// The nodes file lives in the server's own directory (--dir).
		s := newServer(t, port, []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"})
		s.Restart()
		c.Nodes = append(c.Nodes, s)
	}
	ctx := context.Background()
	var clients []*redis.Client
	for _, n := range c.Nodes {
		client := redis.NewClient(&redis.Options{Addr: n.Addr})
		defer client.Close()
		clients = append(clients, client)
	}
	const slots = 16384
	for i, client := range clients {
		lo, hi := i*slots/len(clients), (i+1)*slots/len(clients)-1
		if err := client.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE %d %d on %s: %v", lo, hi, c.Nodes[i].Addr, err)
		}
		// Distinct epochs spare the nodes settling a collision.
		if err := client.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			t.Fatalf("CLUSTER SET-CONFIG-EPOCH on %s: %v", c.Nodes[i].Addr, err)
		}
	}
	for _, n := range c.Nodes[1:] {
		host, port := splitHostPort(t, n.Addr)
		if err := clients[0].ClusterMeet(ctx, host, port).Err(); err != nil {
			t.Fatalf("CLUSTER MEET %s: %v", n.Addr, err)
		}
	}
	for i, client := range clients {
		var info string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			info, _ = client.ClusterInfo(ctx).Result()
			if strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s is not ok:\n%s", c.Nodes[i].Addr, info)
			}
		}
	}
	return c
}

// Owner is the node that holds key's hash slot.
func (c *Cluster) Owner(t testing.TB, key string) *Server {
	t.Helper()
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: c.Seed()})
	defer client.Close()
	slot, err := client.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
	}
	ranges, err := client.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	for _, r := range ranges {
		if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
			for _, n := range c.Nodes {
				if n.Addr == r.Nodes[0].Addr {
					return n
				}
			}
		}
	}
	t.Fatalf("no node of %v holds slot %d", c.Addrs(), slot)
	return nil
}

func splitHostPort(t testing.TB, addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("address %q has no port", addr)
	}
	return addr[:i], addr[i+1:]
}

// String describes the cluster for a failure message.
func (c *Cluster) String() string { return fmt.Sprintf("cluster %v", c.Addrs()) }
