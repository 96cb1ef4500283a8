package integration_tests

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The README's recipes, "Put it in front of your app": each runs the
// Caddyfile of examples/<name>/ as shipped (only the site address, the
// app's address and paths changed) in front of the example app, run by
// the real runtime: php-fpm, node, Flask.

const recipeSecret = "recipe-secret-0123456789abcdef-0123456789"

// requireTool fails the test under CI=true, and skips it elsewhere, with
// why: what is missing and the package that brings it.
func requireTool(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// recipeCaddyfile returns examples/<name>/Caddyfile with each old string
// (which must be there) replaced by its new one, app.example.com by a
// loopback site on a free port, and the test's global options before it.
// The gateway's secret is SESSION_SECRET, as in the README.
func recipeCaddyfile(t *testing.T, name string, replace ...string) (caddyfile, siteURL string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "examples", name, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2)
	siteURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	text := string(raw)
	replace = append(replace, "app.example.com", siteURL)
	for i := 0; i+1 < len(replace); i += 2 {
		if strings.Count(text, replace[i]) != 1 {
			t.Fatalf("examples/%s/Caddyfile: want %q once", name, replace[i])
		}
		text = strings.Replace(text, replace[i], replace[i+1], 1)
	}
	t.Setenv("SESSION_SECRET", recipeSecret)
	return fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n}\n\n%s", ports[1], text), siteURL
}

// startProcess runs cmd until the test ends, and waits until it accepts
// connections on network, addr (a unix socket or a TCP address). The
// process gets a process group of its own, ended with it: php-fpm's
// workers outlive a master killed alone.
func startProcess(t *testing.T, what string, cmd *exec.Cmd, network, addr string) {
	t.Helper()
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", what, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("%s log:\n%s", what, log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("%s exited:\n%s", what, log.String())
		default:
		}
		if c, err := net.Dial(network, addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s:\n%s", what, addr, log.String())
		}
	}
}

// syncBuffer is a log that a process writes and a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// postForm sends a POST of form to url with the given session cookie value
// ("" for none) and extra headers as name, value pairs.
func postForm(t *testing.T, url, cookie string, form url.Values, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != "" {
		req.Header.Set("Cookie", "session="+cookie)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return do(t, req)
}

// walkRecipe drives one of the example apps, which all behave alike,
// through the gateway: a visit counter, a login, a logout; the session
// seen by the app, never a client's forgery.
func walkRecipe(t *testing.T, site string) {
	t.Helper()
	check := func(where string, resp *http.Response, status int, body, want string) {
		t.Helper()
		noProtocolHeaders(t, where, resp.Header)
		if resp.StatusCode != status || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want %d with %q:\n%s", where, resp.StatusCode, status, want, body)
		}
	}

	// A first visit: the app counts it in a new session.
	resp, body := get(t, site+"/", "")
	check("first visit", resp, 200, body, "Hello, stranger. Visits: 1")
	visitor := sessionCookie(t, resp)
	if !visitor.Secure || !visitor.HttpOnly {
		t.Errorf("the recipe's cookie is not Secure and HttpOnly: %q", resp.Header.Get("Set-Cookie"))
	}

	// Log in: a redirect home, a renewed session that keeps the count.
	resp, body = postForm(t, site+"/login", visitor.Value, url.Values{"user": {"alice"}})
	check("login", resp, http.StatusSeeOther, body, "")
	if resp.Header.Get("Location") != "/" {
		t.Errorf("login redirects to %q", resp.Header.Get("Location"))
	}
	login := sessionCookie(t, resp)
	if login.Value == visitor.Value || login.MaxAge <= 0 {
		t.Errorf("login: not a new, permanent cookie: %q", resp.Header.Get("Set-Cookie"))
	}
	resp, body = get(t, site+"/", login.Value)
	check("after login", resp, 200, body, "Hello, alice! Visits: 2")
	alice := sessionCookie(t, resp).Value
	resp, body = get(t, site+"/", alice)
	check("the counter", resp, 200, body, "Hello, alice! Visits: 3")
	alice = sessionCookie(t, resp).Value

	// A session sent by the client, in any spelling, never reaches the app.
	spoof := []string{
		"X-Session", `{"user":"mallory","visits":100}`,
		"X_Session", `{"user":"mallory","visits":100}`,
		"X-Session-Update", `{"user":"mallory"}`,
	}
	resp, body = get(t, site+"/", alice, spoof...)
	check("alice, with a spoofed session", resp, 200, body, "Hello, alice! Visits: 4")
	resp, body = get(t, site+"/", "", spoof...)
	check("no cookie, a spoofed session", resp, 200, body, "Hello, stranger. Visits: 1")
	if strings.Contains(body, "mallory") {
		t.Errorf("the app saw the spoofed session: %s", body)
	}

	// Any name, as text: non-ASCII survives the headers, markup is escaped.
	resp, _ = postForm(t, site+"/login", "", url.Values{"user": {"Zoë <script>alert(1)</script> 😀"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login with a non-ASCII name: %d", resp.StatusCode)
	}
	resp, body = get(t, site+"/", sessionCookie(t, resp).Value)
	check("a hostile name", resp, 200, body, "Hello, Zoë &lt;script&gt;alert(1)&lt;/script&gt; 😀! Visits: 1")
	if strings.Contains(body, "<script>") {
		t.Errorf("a user name became markup: %s", body)
	}

	// A cross-site form cannot log alice out; her own can.
	resp, _ = postForm(t, site+"/logout", alice, nil, "Sec-Fetch-Site", "cross-site")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site logout: %d, want 403", resp.StatusCode)
	}
	resp, body = postForm(t, site+"/logout", alice, nil, "Sec-Fetch-Site", "same-origin")
	check("logout", resp, http.StatusSeeOther, body, "")
	if c := sessionCookie(t, resp); c.MaxAge != -1 {
		t.Errorf("logout did not delete the cookie: %q", resp.Header.Get("Set-Cookie"))
	}
}

// phpFPM returns Debian's php-fpm binary (/usr/sbin/php-fpmX.Y), the newest
// if there are several.
func phpFPM(t *testing.T) string {
	t.Helper()
	found, _ := filepath.Glob("/usr/sbin/php-fpm*")
	if len(found) == 0 {
		requireTool(t, "php-fpm is required for the PHP recipe (apt-get install php-fpm)")
	}
	sort.Slice(found, func(i, j int) bool { return versionLess(found[i], found[j]) })
	return found[len(found)-1]
}

// versionLess orders php-fpm8.2 before php-fpm8.10.
func versionLess(a, b string) bool {
	var a1, a2, b1, b2 int
	fmt.Sscanf(filepath.Base(a), "php-fpm%d.%d", &a1, &a2)
	fmt.Sscanf(filepath.Base(b), "php-fpm%d.%d", &b1, &b2)
	if a1 != b1 {
		return a1 < b1
	}
	return a2 < b2
}

// startPHPFPM runs php-fpm with a pool of its own on a unix socket in a
// temporary directory, as the current user, and returns the socket's path.
func startPHPFPM(t *testing.T) string {
	t.Helper()
	bin := phpFPM(t)
	dir := t.TempDir()
	socket := filepath.Join(dir, "fpm.sock")
	conf := fmt.Sprintf(`[global]
pid = %[1]s/fpm.pid
error_log = /proc/self/fd/2
daemonize = no

[recipe]
listen = %[2]s
listen.mode = 0600
pm = static
pm.max_children = 2
catch_workers_output = yes
`, dir, socket)
	args := []string{"--nodaemonize", "--fpm-config", filepath.Join(dir, "php-fpm.conf")}
	if os.Geteuid() == 0 {
		// php-fpm refuses to run its workers as root unless told to.
		conf += "user = root\ngroup = root\n"
		args = append(args, "--allow-to-run-as-root")
	}
	if err := os.WriteFile(filepath.Join(dir, "php-fpm.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, filepath.Base(bin), exec.Command(bin, args...), "unix", socket)
	return socket
}

// TestPHPRecipe: examples/php behind Caddy's php_fastcgi, with a real
// php-fpm from Debian's php-fpm package.
func TestPHPRecipe(t *testing.T) {
	socket := startPHPFPM(t)
	public, err := filepath.Abs("../examples/php/public")
	if err != nil {
		t.Fatal(err)
	}
	caddyfile, site := recipeCaddyfile(t, "php",
		"/srv/app/public", public,
		"unix//run/php/php8.2-fpm.sock", "unix/"+socket)
	runCaddy(t, caddyfile, site)
	walkRecipe(t, site)

	// PHP reads X_Session as HTTP_X_SESSION too: the gateway strips it, so
	// a client cannot get its own session to PHP through FastCGI either.
	resp, body := get(t, site+"/", "", "X_SESSION", `{"user":"mallory"}`, "x.session", `{"user":"mallory"}`)
	if resp.StatusCode != 200 || !strings.Contains(body, "Hello, stranger.") {
		t.Errorf("PHP saw a spoofed session: %d %s", resp.StatusCode, body)
	}
}

// TestNodeRecipe: examples/node/app.js, run by node, behind reverse_proxy.
func TestNodeRecipe(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		requireTool(t, "node is required for the Node recipe (apt-get install nodejs)")
	}
	port := freePort(t)
	cmd := exec.Command(node, "../examples/node/app.js")
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startProcess(t, "node", cmd, "tcp", addr)
	caddyfile, site := recipeCaddyfile(t, "node", "127.0.0.1:3000", addr)
	runCaddy(t, caddyfile, site)
	walkRecipe(t, site)
}

// TestFlaskRecipe: examples/flask/app.py, run by Debian's python3 and
// python3-flask, behind reverse_proxy; it reads the session from
// X-Session and never sees the cookie.
func TestFlaskRecipe(t *testing.T) {
	requireFlask(t)
	port := freePort(t)
	cmd := exec.Command(debianPython, "../examples/flask/app.py", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startProcess(t, "flask", cmd, "tcp", addr)
	caddyfile, site := recipeCaddyfile(t, "flask", "127.0.0.1:5000", addr)
	runCaddy(t, caddyfile, site)
	walkRecipe(t, site)
}
