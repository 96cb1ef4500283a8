package memstore

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
	"github.com/sessiongate/caddy-session/sessioncore/storetest"
)

// BenchmarkMemoryPerSession fills a memory store with 100,000 and
// 1,000,000 sessions of about 200 bytes of JSON, each indexed under its
// user (one user per three sessions, as with user_key), and reports the
// heap and the resident memory each session costs. Run it alone, once:
//
//	go test ./sessioncore/memstore -run XXX -bench MemoryPerSession -benchtime 1x
func BenchmarkMemoryPerSession(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				heapBefore, rssBefore := heapInUse(), residentBytes()
				store := New(n, nil)
				ctx := context.Background()
				pad := json.RawMessage(`"` + strings.Repeat("x", 130) + `"`)
				for i := range n {
					changes := sessioncore.Changes{
						Create: true,
						Set: map[string]json.RawMessage{
							"user_id": json.RawMessage(fmt.Sprintf(`"u-%07d"`, i/3)),
							"role":    json.RawMessage(`"editor"`),
							"pad":     pad,
						},
						Owner: &sessioncore.Owner{User: fmt.Sprintf("u-%07d", i/3), Device: "Firefox on Linux", Created: time.Now()},
					}
					if _, err := store.Commit(ctx, storetest.NewID(b), changes, time.Hour); err != nil {
						b.Fatal(err)
					}
				}
				heap, rss := heapInUse()-heapBefore, residentBytes()-rssBefore
				b.ReportMetric(float64(heap)/float64(n), "heap-B/session")
				b.ReportMetric(float64(rss)/float64(n), "rss-B/session")
				runtime.KeepAlive(store)
			}
		})
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// residentBytes is the process's resident set (VmRSS).
func residentBytes() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
