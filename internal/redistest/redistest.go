// Package redistest runs real Redis processes (Debian's redis-server) on
// free loopback ports for the tests, and stops them when the test ends: a
// single server (Start), a three-master Redis Cluster (StartCluster), a
// master with a replica watched by three sentinels (StartSentinelGroup),
// and a server that speaks only TLS and asks for a client certificate
// (StartTLS).
package redistest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	// Addr is host:port on loopback.
	Addr string

	t    testing.TB
	dir  string
	cmd  *exec.Cmd
	args []string // beyond port, bind, persistence and dir
	conf string   // a config file to start with (sentinels need one)

	password  string      // AUTH before PING, when set
	tlsConfig *tls.Config // PING over TLS, when set
}

// Start runs redis-server on a free loopback port. Without redis-server
// the test fails when CI=true and is skipped otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, nil)
}

// StartWithPassword runs redis-server as Start does, asking clients for
// password (requirepass).
func StartWithPassword(t testing.TB, password string) *Server {
	t.Helper()
	need(t, "redis-server", "redis-server")
	s := newServer(t, FreePorts(t, 1)[0], []string{"--requirepass", password})
	s.password = password
	s.Restart()
	return s
}

// need fails (CI=true) or skips the test when a program is missing.
func need(t testing.TB, program, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(program); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required (apt-get install %s): %v", program, pkg, err)
		}
		t.Skipf("%s is not installed: %v", program, err)
	}
}

// start runs a server with extra arguments on a free port.
func start(t testing.TB, args []string) *Server {
	t.Helper()
	need(t, "redis-server", "redis-server")
	s := newServer(t, FreePorts(t, 1)[0], args)
	s.Restart()
	return s
}

// newServer prepares a server on port, with its own directory, stopped at
// the test's end; Restart starts it.
func newServer(t testing.TB, port int, args []string) *Server {
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), t: t, dir: t.TempDir(), args: args}
	t.Cleanup(s.Stop)
	return s
}

// FreePorts returns n distinct loopback ports that were free a moment ago,
// held open together while they are chosen so that none comes twice.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// Restart starts the server again on the same port (after Stop). A plain
// server comes back empty; a sentinel keeps what its config file says.
func (s *Server) Restart() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	var argv []string
	if s.conf != "" {
		argv = append(argv, s.conf)
	}
	if s.tlsConfig == nil {
		argv = append(argv, "--port", port)
	}
	argv = append(argv, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir)
	argv = append(argv, s.args...)
	s.cmd = exec.Command("redis-server", argv...)
	logFile, err := os.OpenFile(s.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logFile.Close()
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	var last error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if last = s.ping(); last == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.LogFile())
			s.t.Fatalf("redis-server did not start on %s: %v\n%s", s.Addr, last, log)
		}
	}
}

// LogFile is where the process writes its log.
func (s *Server) LogFile() string { return filepath.Join(s.dir, "redis.log") }

// Stop kills the server, as an outage would.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *Server) ping() error {
	var c net.Conn
	var err error
	dialer := &net.Dialer{Timeout: 200 * time.Millisecond}
	if s.tlsConfig != nil {
		c, err = tls.DialWithDialer(dialer, "tcp", s.Addr, s.tlsConfig)
	} else {
		c, err = dialer.Dial("tcp", s.Addr)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(c)
	if s.password != "" {
		fmt.Fprint(c, command("AUTH", s.password))
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("AUTH refused: %q %v", line, err)
		}
	}
	fmt.Fprint(c, command("PING"))
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("no PONG: %q %v", line, err)
	}
	return nil
}

// command is a command in RESP, Redis's protocol.
func command(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}
