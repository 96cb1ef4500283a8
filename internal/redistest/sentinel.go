package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelGroup is a master, one replica of it and three sentinels that
// watch them with a quorum of two. The sentinels judge a master down after
// a second and give up on a failover after four, so that one completes in
// a second or two.
type SentinelGroup struct {
	MasterName string
	// Master and Replica are the servers as started: after a failover the
	// replica is the master (see MasterAddr).
	Master, Replica *Server
	Sentinels       []*Server
	// Password is the servers' requirepass, SentinelPassword the
	// sentinels' own ("" for none).
	Password, SentinelPassword string
}

// SentinelOption changes how StartSentinelGroup sets the group up.
type SentinelOption func(*SentinelGroup)

// WithPassword makes the master and the replica ask for password (and
// authenticate to each other, and the sentinels to them, with it).
func WithPassword(password string) SentinelOption {
	return func(g *SentinelGroup) { g.Password = password }
}

// WithSentinelPassword makes the sentinels ask for password.
func WithSentinelPassword(password string) SentinelOption {
	return func(g *SentinelGroup) { g.SentinelPassword = password }
}

// SentinelAddrs are the sentinels' addresses.
func (g *SentinelGroup) SentinelAddrs() []string {
	var addrs []string
	for _, s := range g.Sentinels {
		addrs = append(addrs, s.Addr)
	}
	return addrs
}

// StartSentinelGroup runs the group on free loopback ports and waits until
// the replica is in sync and every sentinel knows the replica and the two
// other sentinels (two or three seconds: sentinels announce themselves
// every two). Without redis-server the test fails when CI=true and is
// skipped otherwise. The sentinels are redis-server --sentinel, which is
// what Debian's redis-sentinel runs.
func StartSentinelGroup(t testing.TB, masterName string, options ...SentinelOption) *SentinelGroup {
	t.Helper()
	need(t, "redis-server", "redis-server")
	g := &SentinelGroup{MasterName: masterName}
	for _, o := range options {
		o(g)
	}
	ports := FreePorts(t, 5)
	// Either may be the master: neither waits for more replicas before a
	// full sync (five seconds by default).
	auth := []string{"--repl-diskless-sync-delay", "0"}
	if g.Password != "" {
		auth = append(auth, "--requirepass", g.Password, "--masterauth", g.Password)
	}
	g.Master = newServer(t, ports[0], auth)
	g.Master.password = g.Password
	g.Master.Restart()
	_, masterPort := splitHostPort(t, g.Master.Addr)
	g.Replica = newServer(t, ports[1], append([]string{"--replicaof", "127.0.0.1", masterPort}, auth...))
	g.Replica.password = g.Password
	g.Replica.Restart()

	ctx := context.Background()
	replica := g.Client(t, g.Replica.Addr)
	waitFor(t, 10*time.Second, "the replica to sync", func() (bool, string) {
		info, _ := replica.Info(ctx, "replication").Result()
		return strings.Contains(info, "master_link_status:up"), info
	})

	// The sentinels start once the replica is there: they learn of it from
	// the master's INFO, which they ask for when they connect, then only
	// every ten seconds.
	for _, port := range ports[2:] {
		s := newServer(t, port, []string{"--sentinel"})
		conf := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]s 2\n"+
			"sentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 4000\n"+
			"sentinel parallel-syncs %[1]s 1\n", masterName, masterPort)
		if g.Password != "" {
			conf += fmt.Sprintf("sentinel auth-pass %s %s\n", masterName, g.Password)
		}
		if g.SentinelPassword != "" {
			// The sentinels also authenticate to each other with it.
			conf += fmt.Sprintf("requirepass %s\n", g.SentinelPassword)
		}
		s.conf = filepath.Join(s.dir, "sentinel.conf")
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		s.password = g.SentinelPassword
		s.Restart()
		g.Sentinels = append(g.Sentinels, s)
	}
	for _, s := range g.Sentinels {
		sentinel := g.SentinelClient(t, s.Addr)
		waitFor(t, 15*time.Second, "sentinel "+s.Addr+" to know the replica and the other sentinels", func() (bool, string) {
			replicas, err1 := sentinel.Replicas(ctx, masterName).Result()
			others, err2 := sentinel.Sentinels(ctx, masterName).Result()
			return err1 == nil && err2 == nil && len(replicas) == 1 && len(others) == 2,
				fmt.Sprintf("replicas %v (%v), sentinels %v (%v)", replicas, err1, others, err2)
		})
	}
	return g
}

// Client is a plain client of one of the group's servers, with the group's
// password, closed when the test ends.
func (g *SentinelGroup) Client(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Password: g.Password})
	t.Cleanup(func() { c.Close() })
	return c
}

// SentinelClient is a client of one sentinel, closed when the test ends.
func (g *SentinelGroup) SentinelClient(t testing.TB, addr string) *redis.SentinelClient {
	c := redis.NewSentinelClient(&redis.Options{Addr: addr, Password: g.SentinelPassword})
	t.Cleanup(func() { c.Close() })
	return c
}

// MasterAddr asks the first sentinel where the master is.
func (g *SentinelGroup) MasterAddr(t testing.TB) string {
	t.Helper()
	addr, err := g.SentinelClient(t, g.Sentinels[0].Addr).GetMasterAddrByName(context.Background(), g.MasterName).Result()
	if err != nil || len(addr) != 2 {
		t.Fatalf("SENTINEL GET-MASTER-ADDR-BY-NAME %s: %v %v", g.MasterName, addr, err)
	}
	return net.JoinHostPort(addr[0], addr[1])
}

// Failover has the first sentinel promote the replica (SENTINEL FAILOVER,
// as an operator would before maintenance) and waits until every sentinel
// names the new master and it answers as one. It returns the new master's
// address. The old master turns into a replica of it a few seconds later,
// when the sentinels reconfigure it.
func (g *SentinelGroup) Failover(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	old := g.MasterAddr(t)
	if err := g.SentinelClient(t, g.Sentinels[0].Addr).Failover(ctx, g.MasterName).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER %s: %v", g.MasterName, err)
	}
	var now string
	for _, s := range g.Sentinels {
		sentinel := g.SentinelClient(t, s.Addr)
		waitFor(t, 15*time.Second, "sentinel "+s.Addr+" to name a new master", func() (bool, string) {
			addr, err := sentinel.GetMasterAddrByName(ctx, g.MasterName).Result()
			if err != nil || len(addr) != 2 {
				return false, fmt.Sprint(addr, err)
			}
			now = net.JoinHostPort(addr[0], addr[1])
			return now != old, now
		})
	}
	master := g.Client(t, now)
	waitFor(t, 10*time.Second, "the new master "+now+" to answer as master", func() (bool, string) {
		info, _ := master.Info(ctx, "replication").Result()
		return strings.Contains(info, "role:master"), info
	})
	return now
}

// waitFor polls ok every 50 ms until it holds, and fails the test with what
// ok last said if it does not hold within limit.
func waitFor(t testing.TB, limit time.Duration, what string, ok func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(limit); ; time.Sleep(50 * time.Millisecond) {
		var done bool
		if done, last = ok(); done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last: %s", limit, what, last)
		}
	}
}
