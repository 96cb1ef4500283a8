// Command bench measures the gateway side by side with plain reverse_proxy
// on this machine, as users would run it: a real Caddy binary per
// configuration, a small upstream, and wrk as the load generator.
//
//	go run ./integration_tests/bench [-rounds 5] [-duration 5s] [-connections 32]
//
// Each round runs every configuration once, interleaved (A B C, B C A,
// C A B, ...), so that drift of the machine hits them alike. Caddy is pinned to core 0,
// wrk and the upstream to core 1 (when there are two cores). It prints the
// median requests per second and p99 latency of each configuration, its
// per-round ratios against plain reverse_proxy, and each Caddy's peak RSS.
// Two reference rows stand beside the gateway's: a second, identical plain
// reverse_proxy process, whose ratio shows the method's resolution on this
// machine, and plain reverse_proxy in front of an upstream that refreshes a
// cookie of the gateway's size itself, the floor under a refresh.
//
//	go run ./integration_tests/bench -instructions [-rounds 3] [-duration 15s]
//
// counts instead the instructions Caddy executes per request under the
// same load, under callgrind (see countInstructions), and
//
//	go run ./integration_tests/bench -allocations [-rounds 3] [-duration 5s]
//
// the allocations and bytes it allocates per request (see
// countAllocations).
// Everything runs on loopback, is bounded in time, and is stopped on exit.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// A config is one Caddy process under test.
type config struct {
	name  string
	site  string // the site block's body; {upstream} is replaced
	login string // path whose response sets the session cookie ("" for none)
	// cookieOf, for a configuration without login, is the one whose
	// session cookie it is sent, so that both parse the same request.
	cookieOf *config
	path     string // the path loaded; "/" when empty
	// distinct is how many different session cookies the load rotates
	// through (a wrk Lua script); 0 or 1: one.
	distinct int
	port     int
	cmd      *exec.Cmd
	cookie   string // the Cookie header's value: session=...[; session.1=...]
	// cookieFile holds one Cookie header value per line, when distinct > 1.
	cookieFile string
	// alsoCPU are processes whose CPU time counts towards c's per
	// request (the redis-server of a Redis store).
	alsoCPU []*exec.Cmd
	// For a peer that is not this gateway: the command that serves on
	// port in front of upstream, and how a session is minted (by default
	// a GET of login on c's port, through the gateway).
	command  func(port int, upstream string) *exec.Cmd
	logInOne func(c *config) (string, error)
	rps      []float64
	p99      []time.Duration
	cpu      []time.Duration // CPU time per request: Caddy's, and alsoCPU's
}

const secret = "bench-secret-0123456789abcdef0123456789abcdef"

// peers are the peers' binaries, from the flags.
var peers peerBinaries

func main() {
	rounds := flag.Int("rounds", 5, "rounds of A B C ...")
	duration := flag.Duration("duration", 5*time.Second, "load per configuration per round")
	connections := flag.Int("connections", 32, "wrk connections")
	instructions := flag.Bool("instructions", false, "count Caddy's instructions per request under callgrind instead of loading with wrk")
	allocations := flag.Bool("allocations", false, "measure the allocations per request of one native Caddy instead of loading with wrk")
	profiles := flag.String("profiles", "", "with -instructions: keep each configuration's callgrind profile in this directory; with -allocations, its allocation profiles")
	suite := flag.String("suite", "core", "what to measure: core (read, refresh, Redis, the edge gate), scale (distinct cookies, session sizes), gate (the edge gate taken apart), matchers (its matcher), redis (plain and the Redis store only, for -connections 256) or peers (oauth2-proxy, caddy-security and the gateway's gate)")
	flag.StringVar(&peers.oauth2Proxy, "oauth2-proxy", "", "with -suite peers: oauth2-proxy's binary (default: built from the Go module proxy, v7.15.6)")
	flag.StringVar(&peers.caddySecurity, "caddy-security", "", "with -suite peers: a Caddy built with caddy-security (default: left out)")
	upstreamFlag := flag.String("serve-upstream", "", "internal: serve the upstream on this address")
	flag.Parse()
	if *upstreamFlag != "" {
		serveUpstream(*upstreamFlag)
		return
	}
	measure := func(ctx context.Context, binary, dir, upstream string, configs []*config) error {
		return loadRounds(ctx, binary, dir, upstream, configs, *rounds, *duration, *connections)
	}
	if *allocations {
		measure = func(ctx context.Context, binary, dir, upstream string, configs []*config) error {
			return countAllocations(ctx, binary, dir, upstream, configs, *rounds, *connections, *duration, *profiles)
		}
	}
	if *instructions {
		measure = func(ctx context.Context, binary, dir, upstream string, configs []*config) error {
			return countInstructions(ctx, binary, dir, upstream, configs, *rounds, *connections, *duration, *profiles)
		}
	}
	if err := run(*suite, measure); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run builds the gateway, starts the upstream (and Redis when there is
// one) and hands the configurations to measure.
func run(suite string, measure func(ctx context.Context, binary, dir, upstream string, configs []*config) error) error {
	dir, err := os.MkdirTemp("", "session-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Println("building the gateway...")
	binary := filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", binary, "./cmd/caddy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}

	upstreamAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
	self, err := os.Executable()
	if err != nil {
		return err
	}
	upstream := pinned(1, self, "-serve-upstream", upstreamAddr)
	if err := upstream.Start(); err != nil {
		return err
	}
	defer kill(upstream)

	configs, err := suiteConfigs(suite)
	if err != nil {
		return err
	}
	if suite == "peers" {
		more, stopProvider, err := peerConfigs(dir)
		if err != nil {
			return err
		}
		defer stopProvider()
		configs = append(configs, more...)
	}
	if _, err := exec.LookPath("redis-server"); err == nil && suite != "scale" && suite != "gate" && suite != "matchers" {
		redisAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
		_, redisPort, _ := net.SplitHostPort(redisAddr)
		redis := pinned(1, "redis-server", "--port", redisPort, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
		if err := redis.Start(); err != nil {
			return fmt.Errorf("redis-server: %w", err)
		}
		defer kill(redis)
		if err := waitListeningAddr(redisAddr); err != nil {
			return fmt.Errorf("redis-server: %w", err)
		}
		redisStore := "store redis {\n\t\t\taddress redis://" + redisAddr + "/0\n\t\t}"
		cachedStore := "store redis {\n\t\t\taddress redis://" + redisAddr + "/0\n\t\t\tclient_cache\n\t\t}"
		if suite == "peers" {
			configs = append(configs,
				&config{name: "session edge gate, Redis store (CPU includes redis-server's)", login: "/login",
					site: strings.Replace(gateSite, "forward user_id", redisStore+"\n\t\tforward user_id", 1), alsoCPU: []*exec.Cmd{redis}},
				&config{name: "session edge gate, Redis store, client_cache (CPU includes redis-server's)", login: "/login",
					site: strings.Replace(gateSite, "forward user_id", cachedStore+"\n\t\tforward user_id", 1), alsoCPU: []*exec.Cmd{redis}})
		} else {
			configs = append(configs,
				&config{name: "session (redis store, read, not reissued; CPU includes redis-server's)", login: "/login",
					site: sessionSite(redisStore), alsoCPU: []*exec.Cmd{redis}},
				&config{name: "session (redis store with client_cache, read, not reissued; CPU includes redis-server's)", login: "/login",
					site: sessionSite(cachedStore), alsoCPU: []*exec.Cmd{redis}})
		}
	} else if suite != "scale" && suite != "gate" && suite != "matchers" {
		fmt.Println("redis-server not found: skipping the Redis configuration")
	}
	fmt.Printf("machine: %s/%s, %d cores, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel())
	return measure(ctx, binary, dir, upstreamAddr, configs)
}

// suiteConfigs returns the configurations a suite measures, plain
// reverse_proxy first.
func suiteConfigs(suite string) ([]*config, error) {
	plain := "reverse_proxy {upstream}"
	switch suite {
	case "core":
		read := &config{name: "session (cookie read, not reissued)", login: "/login", site: sessionSite("")}
		refresh := &config{name: "session (permanent, refreshed every response)", login: "/login-permanent", site: sessionSite("")}
		return []*config{
			{name: "reverse_proxy", site: plain, cookieOf: read},
			read,
			refresh,
			// What an app that refreshes its own cookie costs through
			// plain reverse_proxy: the floor under the gateway's refresh.
			{name: "reverse_proxy (the upstream refreshes a cookie of the same size)", site: plain, cookieOf: refresh, path: appRefreshPath},
			// The README's edge auth: identity headers, and a gate that
			// answers anonymous requests itself.
			{name: "session (edge gate: two forward lines, respond 401 to anonymous)", login: "/login", site: gateSite},
		}, nil
	case "peers":
		gate := &config{name: "session edge gate (securecookie)", login: "/login", site: gateSite}
		return []*config{
			{name: "reverse_proxy", site: plain, cookieOf: gate},
			gate,
			{name: "session edge gate, codec flask", login: "/login", site: strings.Replace(gateSite, "forward user_id", "codec flask\n\t\tforward user_id", 1)},
			{name: "session edge gate, 4,096 sessions rotating", login: "/login", site: gateSite, distinct: 4096},
		}, nil
	case "gate":
		// The edge gate taken apart: what each of its pieces costs.
		read := &config{name: "session (cookie read, not reissued)", login: "/login", site: sessionSite("")}
		return []*config{
			{name: "reverse_proxy", site: plain, cookieOf: read},
			read,
			{name: "session read, two forward lines", login: "/login", site: sessionSite("forward user_id X-Remote-User\n\t\tforward role X-Remote-Role")},
			{name: "session read, the anonymous matcher and respond 401", login: "/login", site: strings.Replace(gateSite, "forward user_id X-Remote-User\n\t\tforward role X-Remote-Role", "", 1)},
			{name: "session edge gate (both)", login: "/login", site: gateSite},
			{name: "session edge gate, X-Session limited to the identity (send user_id role)", login: "/login",
				site: strings.Replace(gateSite, "forward user_id", "send user_id role\n\t\tforward user_id", 1)},
		}, nil
	case "matchers":
		// The gate's matcher taken apart: the session matcher alone, a
		// path matcher alone, each guarding a respond that never answers.
		read := &config{name: "session (cookie read, not reissued)", login: "/login", site: sessionSite("")}
		return []*config{
			{name: "reverse_proxy", site: plain, cookieOf: read},
			read,
			{name: "read, respond 401 when not session user_id", cookieOf: read,
				site: sessionSite("") + "\n\t@anonymous not session user_id\n\trespond @anonymous 401"},
			{name: "read, respond 401 on path /never", cookieOf: read,
				site: sessionSite("") + "\n\t@never path /never\n\trespond @never 401"},
			{name: "plain, respond 401 on path /never", cookieOf: read,
				site: plain + "\n\t@never path /never\n\trespond @never 401"},
		}, nil
	case "redis":
		// The Redis rows (added by run) beside their floors: the cookie
		// read, and a server-side store without a network.
		read := &config{name: "session (cookie read, not reissued)", login: "/login", site: sessionSite("")}
		return []*config{{name: "reverse_proxy", site: plain, cookieOf: read}, read,
			{name: "session (memory store, read, not reissued)", login: "/login", site: sessionSite("store memory")}}, nil
	case "scale":
		one := &config{name: "session read, 1 cookie (200 B session)", login: "/login", site: sessionSite("")}
		many := &config{name: "session read, 1,000 cookies rotating", login: "/login", site: sessionSite(""), distinct: 1000}
		most := &config{name: "session read, 100,000 cookies rotating", login: "/login", site: sessionSite(""), distinct: 100_000}
		kb := &config{name: "session read, 1 KB session", login: "/login-size?bytes=1024", site: sessionSite("")}
		split := &config{name: "session read, 4 KB session (3 cookies)", login: "/login-size?bytes=4096", site: sessionSite("max_cookie_bytes 12KiB")}
		return []*config{
			{name: "reverse_proxy", site: plain, cookieOf: one},
			one, many, most,
			{name: "reverse_proxy, the same 100,000 cookies rotating", site: plain, cookieOf: most},
			kb,
			{name: "reverse_proxy, the same 1 KB cookie", site: plain, cookieOf: kb},
			split,
			{name: "reverse_proxy, the same 4 KB cookies", site: plain, cookieOf: split},
		}, nil
	}
	return nil, fmt.Errorf("unknown suite %q: core, scale or redis", suite)
}

// loadRounds loads each configuration with wrk, one Caddy process each,
// interleaved, and reports throughput, latency, CPU and memory.
func loadRounds(ctx context.Context, binary, dir, upstreamAddr string, configs []*config, rounds int, duration time.Duration, connections int) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk is required: apt-get install wrk")
	}
	// A second plain reverse_proxy process shows how far two identical
	// processes drift apart here: the resolution of the method.
	control := *configs[0]
	control.name = "reverse_proxy (a second, identical process)"
	configs = slices.Insert(configs, 1, &control)
	for _, c := range configs {
		if err := c.start(ctx, binary, dir, upstreamAddr); err != nil {
			return err
		}
		defer kill(c.cmd)
	}
	if err := waitAllListening(configs); err != nil {
		return err
	}
	if err := logIn(configs); err != nil {
		return err
	}
	fmt.Printf("load: wrk, 1 thread, %d connections, %s per configuration, %d rounds, interleaved\n\n", connections, duration, rounds)
	for _, c := range configs { // warm up every process
		if _, _, err := wrk(ctx, c, connections, time.Second); err != nil {
			return err
		}
	}
	for round := 1; round <= rounds; round++ {
		// Each round starts one configuration later, so that no
		// configuration is always measured at the same point of a round.
		offset := (round - 1) % len(configs)
		for _, c := range append(slices.Clone(configs[offset:]), configs[:offset]...) {
			before := c.cpuTime()
			rps, p99, err := wrk(ctx, c, connections, duration)
			if err != nil {
				return err
			}
			perRequest := time.Duration(float64(c.cpuTime()-before) / (rps * duration.Seconds()))
			c.rps, c.p99, c.cpu = append(c.rps, rps), append(c.p99, p99), append(c.cpu, perRequest)
		}
		fmt.Printf("round %d:", round)
		for _, c := range configs[1:] {
			fmt.Printf("  %.3f", c.rps[round-1]/configs[0].rps[round-1])
		}
		fmt.Println()
	}
	report(configs)
	return nil
}

// logIn gets each session configuration its cookie. Plain reverse_proxy
// gets the same Cookie header as the configuration it stands beside, so
// both parse and carry the same request.
func logIn(configs []*config) error {
	for _, c := range configs {
		if c.login == "" && c.logInOne == nil {
			continue
		}
		var err error
		if c.distinct > 1 {
			err = c.logInMany()
		} else {
			c.cookie, err = c.logIn()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	for _, c := range configs {
		if c.cookieOf != nil {
			c.cookie, c.cookieFile = c.cookieOf.cookie, c.cookieOf.cookieFile
		}
	}
	return nil
}

// logIn mints one session for c and returns its Cookie header.
func (c *config) logIn() (string, error) {
	if c.logInOne != nil {
		return c.logInOne(c)
	}
	return login(c.port, c.login)
}

// logInMany logs in c.distinct times, concurrently, and writes the Cookie
// headers to c.cookieFile.
func (c *config) logInMany() error {
	cookies := make([]string, c.distinct)
	errs := make(chan error, 16)
	next := atomic.Int64{}
	for range 16 {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(cookies) {
					errs <- nil
					return
				}
				var err error
				if cookies[i], err = c.logIn(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			return err
		}
	}
	f, err := os.CreateTemp("", "session-bench-cookies-")
	if err != nil {
		return err
	}
	defer f.Close()
	c.cookieFile = f.Name()
	_, err = f.WriteString(strings.Join(cookies, "\n") + "\n")
	return err
}

// rotateCookies is a wrk script that sends each request the next Cookie
// header of the file given after --, round robin: no value comes back
// before all the others have been sent.
const rotateCookies = `
local cookies = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do cookies[#cookies + 1] = line end
  i = math.random(#cookies) - 1
end
function request()
  i = i % #cookies + 1
  return wrk.format(nil, nil, {["Cookie"] = cookies[i]})
end
`

// url is where c is loaded.
func (c *config) url() string {
	path := c.path
	if path == "" {
		path = "/"
	}
	return fmt.Sprintf("http://127.0.0.1:%d%s", c.port, path)
}

// gateSite is the edge-auth gate of the README's Edge auth section.
const gateSite = `session {
		secret ` + secret + `
		forward user_id X-Remote-User
		forward role X-Remote-Role
	}
	@anonymous {
		not session user_id
		not path /login
	}
	respond @anonymous 401
	reverse_proxy {upstream}`

func sessionSite(extra string) string {
	return `session {
		secret ` + secret + `
		` + extra + `
	}
	reverse_proxy {upstream}`
}

// globalOptions start every Caddyfile: no admin endpoint, no logs below
// errors.
const globalOptions = "{\n\tadmin off\n\tpersist_config off\n\tlog {\n\t\tlevel ERROR\n\t}\n}\n\n"

// siteBlock is c's site, on its port, in front of upstream.
func (c *config) siteBlock(upstream string) string {
	return fmt.Sprintf("http://127.0.0.1:%d {\n\t%s\n}\n", c.port, strings.ReplaceAll(c.site, "{upstream}", upstream))
}

// pinned returns a command that runs on the given core when there are two,
// and dies with the bench, however it ends.
func pinned(core int, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	if runtime.NumCPU() >= 2 {
		if taskset, err := exec.LookPath("taskset"); err == nil {
			cmd = exec.Command(taskset, append([]string{"-c", strconv.Itoa(core), name}, args...)...)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

func (c *config) start(ctx context.Context, binary, dir, upstream string) error {
	c.port = freePort()
	caddyfile := globalOptions + c.siteBlock(upstream)
	path := filepath.Join(dir, fmt.Sprintf("Caddyfile.%d", c.port))
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		return err
	}
	c.cmd = pinned(0, binary, "run", "--config", path, "--adapter", "caddyfile")
	if c.command != nil {
		c.cmd = c.command(c.port, upstream)
	}
	c.cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir, "GOMAXPROCS=1")
	c.cmd.Stderr = io.Discard
	return c.cmd.Start()
}

// wrk loads c for d and returns requests per second and p99 latency.
func wrk(ctx context.Context, c *config, connections int, d time.Duration) (float64, time.Duration, error) {
	args := []string{"-t1", "-c" + strconv.Itoa(connections), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	switch {
	case c.cookieFile != "":
		script := filepath.Join(os.TempDir(), "session-bench-rotate.lua")
		if err := os.WriteFile(script, []byte(rotateCookies), 0o644); err != nil {
			return 0, 0, err
		}
		args = append(args, "-s", script, c.url(), "--", c.cookieFile)
	case c.cookie != "":
		args = append(args, "-H", "Cookie: "+c.cookie, c.url())
	default:
		args = append(args, c.url())
	}
	cmd := pinned(1, "wrk", args...)
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return 0, 0, ctx.Err()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("wrk: %w", err)
	}
	text := string(out)
	if strings.Contains(text, "Non-2xx") {
		return 0, 0, fmt.Errorf("%s: non-2xx responses:\n%s", c.name, text)
	}
	m := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindStringSubmatch(text)
	p := regexp.MustCompile(`\s99%\s+([\d.]+)(us|ms|s)`).FindStringSubmatch(text)
	if m == nil || p == nil {
		return 0, 0, fmt.Errorf("cannot read wrk output:\n%s", text)
	}
	rps, _ := strconv.ParseFloat(m[1], 64)
	p99, _ := time.ParseDuration(p[1] + p[2])
	return rps, p99, nil
}

func report(configs []*config) {
	base := configs[0]
	baseRPS, baseP99 := median(base.rps), medianDuration(base.p99)
	fmt.Printf("\n| configuration | req/s (median) | ratio | median round ratio | min round ratio | p99 (median) | p99 ratio | CPU per request | peak RSS |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range configs {
		var ratios []float64
		for i := range c.rps {
			ratios = append(ratios, c.rps[i]/base.rps[i])
		}
		fmt.Printf("| %s | %.0f | %.3f | %.3f | %.3f | %s | %.2f | %s | %s |\n", c.name, median(c.rps), median(c.rps)/baseRPS,
			median(ratios), slices.Min(ratios), medianDuration(c.p99), float64(medianDuration(c.p99))/float64(baseP99),
			medianDuration(c.cpu).Round(100*time.Nanosecond), peakRSS(c.cmd))
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianDuration(xs []time.Duration) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// peakRSS reads VmHWM of the Caddy process (the child of taskset, which
// execs it, so the same pid).
func peakRSS(cmd *exec.Cmd) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// cpuTime returns the CPU time c's Caddy and its alsoCPU processes have
// used.
func (c *config) cpuTime() time.Duration {
	total := cpuTime(c.cmd)
	for _, cmd := range c.alsoCPU {
		total += cpuTime(cmd)
	}
	return total
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime(cmd *exec.Cmd) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

// login returns the Cookie header value that carries the session path
// sets: the session cookie and its parts.
func login(port int, path string) (string, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	var pairs []string
	for _, c := range resp.Cookies() {
		if c.Name == "session" || strings.HasPrefix(c.Name, "session.") {
			pairs = append(pairs, c.Name+"="+c.Value)
		}
	}
	if len(pairs) == 0 {
		return "", fmt.Errorf("no session cookie from %s", path)
	}
	return strings.Join(pairs, "; "), nil
}

// waitAllListening waits for every configuration's port to open.
func waitAllListening(configs []*config) error {
	for _, c := range configs {
		if err := waitListening(c.port); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

// oneCaddyfile gives each configuration a port, writes a Caddyfile that
// serves them all after global to dir/name, and returns its path: one
// Caddy for every configuration.
func oneCaddyfile(dir, name, global, upstream string, configs []*config) (string, error) {
	var caddyfile strings.Builder
	caddyfile.WriteString(global)
	for _, c := range configs {
		c.port = freePort()
		caddyfile.WriteString(c.siteBlock(upstream))
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, []byte(caddyfile.String()), 0o600)
}

func waitListening(port int) error { return waitListeningAddr(fmt.Sprintf("127.0.0.1:%d", port)) }

// startTimeout bounds how long a process may take to open its port; a
// Caddy under callgrind is slow to start.
var startTimeout = 15 * time.Second

func waitListeningAddr(addr string) error {
	for deadline := time.Now().Add(startTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("%s did not open", addr)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func kill(cmd *exec.Cmd) {
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

const (
	// servedPath answers how many requests the upstream has served.
	servedPath = "/_bench/served"
	// appRefreshPath answers as an app that keeps its own session cookie
	// and refreshes it on every response would, with the same header
	// lines the gateway writes for a refresh.
	appRefreshPath = "/app-refresh"
)

// serveUpstream is the tiny upstream: a 200-byte session is set by /login
// and /login-permanent; every other path answers a short body.
func serveUpstream(addr string) {
	pad := strings.Repeat("x", 130)
	var served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc(servedPath, func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintln(w, served.Load())
	})
	mux.HandleFunc(appRefreshPath, func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if c, err := r.Cookie("session"); err == nil {
			const maxAge = 31 * 24 * time.Hour
			w.Header().Set("Set-Cookie", "session="+c.Value+"; Expires="+time.Now().Add(maxAge).UTC().Format(http.TimeFormat)+
				"; Max-Age="+strconv.Itoa(int(maxAge.Seconds()))+"; HttpOnly; Path=/")
			w.Header().Set("Vary", "Cookie")
			w.Header().Set("Cache-Control", "private")
		}
		_, _ = io.WriteString(w, "hello from the upstream\n")
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Session-Update", `{"role":"editor","user_id":"u-12345","pad":"`+pad+`"}`)
	})
	mux.HandleFunc("/login-size", func(w http.ResponseWriter, r *http.Request) {
		// A session of about ?bytes= bytes of JSON.
		n, _ := strconv.Atoi(r.URL.Query().Get("bytes"))
		fixed := len(`{"role":"editor","user_id":"u-12345","pad":""}`)
		w.Header().Set("X-Session-Update", `{"role":"editor","user_id":"u-12345","pad":"`+strings.Repeat("x", max(n-fixed, 0))+`"}`)
	})
	mux.HandleFunc("/login-permanent", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Session-Update", `{"_permanent":true,"role":"editor","user_id":"u-12345","pad":"`+pad+`"}`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.WriteString(w, "hello from the upstream\n")
	})
	server := &http.Server{Addr: addr, Handler: mux}
	_ = server.ListenAndServe()
}
