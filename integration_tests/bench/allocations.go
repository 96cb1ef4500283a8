package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// countAllocations runs one Caddy, natively, serving every configuration
// on its own port, and measures what each request allocates under the same
// load as loadRounds: for each configuration in turn, it warms up, reads
// the runtime's memory statistics from Caddy's admin endpoint
// (/debug/vars), loads the configuration with wrk for d, lets the requests
// in flight finish, and reads them again; the upstream counts the
// requests. Allocation is what the garbage collector's work follows, and
// unlike time it does not move with the neighbours. With profiles set,
// it also keeps each configuration's allocation profile
// (/debug/pprof/allocs) before and after, for
// go tool pprof -sample_index=alloc_space -diff_base before after.
func countAllocations(ctx context.Context, binary, dir, upstream string, configs []*config, rounds, connections int, d time.Duration, profiles string) error {
	adminPort := freePort()
	global := strings.Replace(globalOptions, "admin off", fmt.Sprintf("admin 127.0.0.1:%d", adminPort), 1)
	path, err := oneCaddyfile(dir, "Caddyfile.allocations", global, upstream, configs)
	if err != nil {
		return err
	}
	cmd := pinned(0, binary, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir, "GOMAXPROCS=1")
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	defer kill(cmd)
	if err := waitAllListening(configs); err != nil {
		return err
	}
	if err := logIn(configs); err != nil {
		return err
	}
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	fmt.Printf("allocations: one Caddy, wrk with %d connections for %s per configuration, %d rounds\n\n", connections, d, rounds)

	type perRequest struct{ allocs, bytes, cycles float64 }
	measured := make([][]perRequest, len(configs))
	for round := 1; round <= rounds; round++ {
		for i, c := range configs {
			if _, _, err := wrk(ctx, c, connections, time.Second); err != nil { // warm up
				return err
			}
			if profiles != "" {
				if err := saveProfile(admin, filepath.Join(profiles, fmt.Sprintf("%d-round%d-before.pprof", i, round))); err != nil {
					return err
				}
			}
			servedBefore, err := served(upstream)
			if err != nil {
				return err
			}
			before, err := memStats(admin)
			if err != nil {
				return err
			}
			if _, _, err := wrk(ctx, c, connections, d); err != nil {
				return err
			}
			time.Sleep(500 * time.Millisecond) // the requests wrk left in flight finish
			after, err := memStats(admin)
			if err != nil {
				return err
			}
			servedAfter, err := served(upstream)
			if err != nil {
				return err
			}
			if profiles != "" {
				if err := saveProfile(admin, filepath.Join(profiles, fmt.Sprintf("%d-round%d-after.pprof", i, round))); err != nil {
					return err
				}
			}
			n := float64(servedAfter - servedBefore)
			if n <= 0 {
				return fmt.Errorf("%s: the upstream served no request under load", c.name)
			}
			measured[i] = append(measured[i], perRequest{
				allocs: float64(after.Mallocs-before.Mallocs) / n,
				bytes:  float64(after.TotalAlloc-before.TotalAlloc) / n,
				cycles: float64(after.NumGC-before.NumGC) / n * 1000,
			})
		}
		fmt.Printf("round %d:", round)
		for i := range configs {
			fmt.Printf("  %.0f B", measured[i][round-1].bytes)
		}
		fmt.Println()
	}

	fmt.Printf("\n| configuration | allocations per request | bytes per request | over plain | GC cycles per 1,000 requests |\n|---|---|---|---|---|\n")
	medianOf := func(i int, field func(perRequest) float64) float64 {
		var xs []float64
		for _, m := range measured[i] {
			xs = append(xs, field(m))
		}
		return median(xs)
	}
	baseBytes := medianOf(0, func(m perRequest) float64 { return m.bytes })
	for i, c := range configs {
		bytes := medianOf(i, func(m perRequest) float64 { return m.bytes })
		fmt.Printf("| %s | %.1f | %.0f | %+.0f B | %.2f |\n", c.name,
			medianOf(i, func(m perRequest) float64 { return m.allocs }), bytes, bytes-baseBytes,
			medianOf(i, func(m perRequest) float64 { return m.cycles }))
	}
	return nil
}

// memStatsFields are the fields of runtime.MemStats this measurement reads.
type memStatsFields struct {
	Mallocs    uint64
	TotalAlloc uint64
	NumGC      uint32
}

// memStats reads the Go runtime's memory statistics from Caddy's admin
// endpoint.
func memStats(admin string) (memStatsFields, error) {
	resp, err := http.Get(admin + "/debug/vars")
	if err != nil {
		return memStatsFields{}, err
	}
	defer resp.Body.Close()
	var vars struct{ Memstats memStatsFields }
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		return memStatsFields{}, fmt.Errorf("reading /debug/vars: %w", err)
	}
	return vars.Memstats, nil
}

// saveProfile saves Caddy's allocation profile to path.
func saveProfile(admin, path string) error {
	resp, err := http.Get(admin + "/debug/pprof/allocs")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
