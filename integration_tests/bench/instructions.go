package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// countInstructions runs one Caddy, serving every configuration on its own
// port, under callgrind, and counts the instructions it executes per
// request under the same load as loadRounds: for each configuration in
// turn, it warms up, zeroes the counters, loads the configuration with wrk
// for d, lets the requests in flight finish, and dumps the counters; the
// upstream counts the requests that reached it. Unlike requests per second
// on a shared virtual machine, the count barely moves with what the
// neighbours do. It covers Caddy's own code (the kernel's work in system
// calls is not counted), and valgrind's CPU has no SHA extensions, so
// SHA-256 runs in software and the gateway's HMACs weigh more than on the
// real CPU.
func countInstructions(ctx context.Context, binary, dir, upstream string, configs []*config, rounds, connections int, d time.Duration, profiles string) error {
	for _, tool := range []string{"valgrind", "callgrind_control", "wrk"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is required: apt-get install valgrind wrk", tool)
		}
	}
	path, err := oneCaddyfile(dir, "Caddyfile.callgrind", globalOptions, upstream, configs)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, "callgrind.out")
	args := []string{"--tool=callgrind", "--callgrind-out-file=" + out}
	if profiles != "" {
		// Each dump names its functions in full, so that one can be read
		// without the ones before it.
		args = append(args, "--compress-strings=no", "--compress-pos=no")
	}
	cmd := pinned(0, "valgrind", append(args, binary, "run", "--config", path, "--adapter", "caddyfile")...)
	// Go's asynchronous preemption signals break callgrind.
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir, "GOMAXPROCS=1", "GODEBUG=asyncpreemptoff=1")
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("valgrind: %w", err)
	}
	defer kill(cmd)
	startTimeout = 3 * time.Minute
	if err := waitAllListening(configs); err != nil {
		return err
	}
	if err := logIn(configs); err != nil {
		return err
	}
	pid := strconv.Itoa(cmd.Process.Pid) // taskset and valgrind exec: the same process
	fmt.Printf("instructions: one Caddy under callgrind, wrk with %d connections for %s per configuration, %d rounds\n\n", connections, d, rounds)

	counts := make([][]float64, len(configs))
	for round := 1; round <= rounds; round++ {
		for i, c := range configs {
			if _, _, err := wrk(ctx, c, connections, 2*time.Second); err != nil { // warm up
				return err
			}
			before, err := served(upstream)
			if err != nil {
				return err
			}
			if err := exec.Command("callgrind_control", "--zero", pid).Run(); err != nil {
				return fmt.Errorf("callgrind_control --zero: %w", err)
			}
			if _, _, err := wrk(ctx, c, connections, d); err != nil {
				return err
			}
			time.Sleep(time.Second) // the requests wrk left in flight finish
			after, err := served(upstream)
			if err != nil {
				return err
			}
			if err := exec.Command("callgrind_control", "--dump", pid).Run(); err != nil {
				return fmt.Errorf("callgrind_control --dump: %w", err)
			}
			total, err := lastDumpTotal(out)
			if err != nil {
				return err
			}
			if profiles != "" {
				if err := keepProfile(out, filepath.Join(profiles, fmt.Sprintf("%d-round%d.callgrind", i, round))); err != nil {
					return err
				}
			}
			if after <= before {
				return fmt.Errorf("%s: the upstream served no request under load", c.name)
			}
			counts[i] = append(counts[i], float64(total)/float64(after-before))
		}
		fmt.Printf("round %d:", round)
		for i := range configs[1:] {
			fmt.Printf("  %.3f", counts[i+1][round-1]/counts[0][round-1])
		}
		fmt.Println()
	}

	fmt.Printf("\n| configuration | instructions per request (median) | ratio | throughput this predicts |\n|---|---|---|---|\n")
	base := median(counts[0])
	for i, c := range configs {
		m := median(counts[i])
		fmt.Printf("| %s | %.0f | %.3f | %.3f |\n", c.name, m, m/base, base/m)
	}
	return nil
}

// keepProfile copies callgrind's newest dump to path, for
// callgrind_annotate.
func keepProfile(out, path string) error {
	newest, err := newestDump(out)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(newest)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// served asks the upstream how many requests it has answered.
func served(upstream string) (int64, error) {
	resp, err := http.Get("http://" + upstream + servedPath)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(body)), 10, 64)
}

// newestDump is callgrind's newest dump, out.N with the highest N.
func newestDump(out string) (string, error) {
	dumps, _ := filepath.Glob(out + ".*")
	suffix := func(path string) int {
		n, _ := strconv.Atoi(path[strings.LastIndexByte(path, '.')+1:])
		return n
	}
	if len(dumps) == 0 {
		return "", fmt.Errorf("callgrind wrote no dump")
	}
	return slices.MaxFunc(dumps, func(a, b string) int { return suffix(a) - suffix(b) }), nil
}

// lastDumpTotal reads the instruction total of callgrind's newest dump,
// out.N with the highest N.
func lastDumpTotal(out string) (int64, error) {
	newest, err := newestDump(out)
	if err != nil {
		return 0, err
	}
	f, err := os.Open(newest)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "summary:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no summary in %s", newest)
}
