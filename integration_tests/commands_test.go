package integration_tests

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sessionCommand runs the built binary's caddy session with args and
// stdin, and returns its standard output and error apart, and whether it
// exited with status 0.
func sessionCommand(t *testing.T, stdin string, args ...string) (stdout, stderr string, ok bool) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(caddyBinary, append([]string{"session"}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir, "HOME="+dir)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), err == nil
}

// newSecretFile has caddy session secret make a secret, checks it, and
// writes it to a file, as an operator would.
func newSecretFile(t *testing.T) (path, secret string) {
	t.Helper()
	out, stderr, ok := sessionCommand(t, "", "secret")
	secret = strings.TrimSuffix(out, "\n")
	if raw, err := base64.RawURLEncoding.DecodeString(secret); !ok || err != nil || len(raw) != 32 || len(secret) != 43 {
		t.Fatalf("caddy session secret: %q %s", out, stderr)
	}
	path = filepath.Join(t.TempDir(), "session-secret")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, secret
}

// The secret caddy session secret makes runs a gateway, and caddy session
// inspect opens the cookies that gateway issues: from the secret file, from
// the gateway's own Caddyfile, split over two cookies, tampered with.
func TestSessionSecretAndInspectCommands(t *testing.T) {
	secretFile, secret := newSecretFile(t)
	routes := appRoutes()
	for path, h := range growRoutes() {
		routes[path] = h
	}
	up := startUpstream(t, routes)
	gw := startGateway(t, up.Addr(), `
	session {
		secret_file `+secretFile+`
		max_cookie_bytes 8KiB
		idle_timeout 2h
	}
	reverse_proxy {upstream}
`)
	resp, _ := get(t, gw.URL+"/login", "")
	cookie := sessionCookie(t, resp).Value
	noSecret := func(what, out string) {
		t.Helper()
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the secret:\n%s", what, out)
		}
	}

	out, stderr, ok := sessionCommand(t, "", "inspect", "--secret-file", secretFile, "--", cookie)
	if !ok || !strings.HasPrefix(out, "valid: opened with the current secret\n") || !strings.Contains(out, `"user": "alice"`) {
		t.Errorf("inspect --secret-file: ok %v\n%s%s", ok, out, stderr)
	}
	noSecret("inspect --secret-file", out+stderr)

	// From the gateway's Caddyfile, the cookie on standard input: the
	// handler's idle timeout decides the expiry.
	out, stderr, ok = sessionCommand(t, cookie+"\n", "inspect", "--config", gw.caddyfile, "--json")
	var report struct {
		Valid   bool
		Status  string
		Limit   string
		Session map[string]any
	}
	if err := json.Unmarshal([]byte(out), &report); !ok || err != nil || !report.Valid || report.Status != "valid" ||
		report.Limit != "idle_timeout 2h" || report.Session["user"] != "alice" {
		t.Errorf("inspect --config --json: ok %v, %+v\n%s%s", ok, report, out, stderr)
	}
	noSecret("inspect --config", out+stderr)

	// A session split over two cookies, as the browser sends them back.
	resp, _ = get(t, gw.URL+"/grow?n=3000", cookie)
	line := cookieLine(resp, "lang=en")
	if strings.Count(line, "session") != 2 {
		t.Fatalf("want a session split over two cookies, got %q", resp.Header.Values("Set-Cookie"))
	}
	out, stderr, ok = sessionCommand(t, "Cookie: "+line+"\n", "inspect", "--config", gw.caddyfile, "--cookie-header")
	if !ok || !strings.Contains(out, "split over 2 cookies") || !strings.Contains(out, `"blob": "xxx`) {
		t.Errorf("inspect a split cookie: ok %v\n%s%s", ok, out, stderr)
	}
	first := strings.Split(line, "; ")[0] // session=2!...
	out, stderr, ok = sessionCommand(t, "", "inspect", "--config", gw.caddyfile, first)
	if ok || !strings.HasPrefix(out, "rejected: a part of a split cookie is missing") || !strings.Contains(out, "session.1 is not in the input") {
		t.Errorf("inspect half a split cookie: ok %v\n%s%s", ok, out, stderr)
	}

	// Tampered with: exit status 1, and why.
	tampered := []byte(cookie)
	tampered[len(tampered)/2] ^= 1
	out, stderr, ok = sessionCommand(t, string(tampered), "inspect", "--secret-file", secretFile)
	if ok || !strings.HasPrefix(out, "rejected: bad signature") {
		t.Errorf("inspect a tampered cookie: ok %v\n%s%s", ok, out, stderr)
	}
}

// caddy session revoke kills a session of a running gateway's memory
// store, found with caddy session inspect.
func TestSessionRevokeCommand(t *testing.T) {
	secretFile, _ := newSecretFile(t)
	up := startUpstream(t, storeRoutes())
	gw := startGateway(t, up.Addr(), `
	session {
		secret_file `+secretFile+`
		store memory
	}
	reverse_proxy {upstream}
`)
	resp, _ := get(t, gw.URL+"/login", "")
	cookie := sessionCookie(t, resp).Value
	before, _ := askMe(t, gw, cookie)
	if before.Session["user"] != "alice" || before.ID == "" {
		t.Fatalf("logged in: %+v", before)
	}

	// The cookie carries only the session's ID.
	out, stderr, ok := sessionCommand(t, cookie, "inspect", "--config", gw.caddyfile, "--json")
	var report struct {
		Valid     bool
		Store     string
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal([]byte(out), &report); !ok || err != nil || !report.Valid || report.Store != "memory" || report.SessionID != before.ID {
		t.Fatalf("inspect: ok %v, %+v, want the ID %s\n%s%s", ok, report, before.ID, out, stderr)
	}

	address := strings.TrimPrefix(gw.Admin, "http://")
	out, stderr, ok = sessionCommand(t, "", "revoke", report.SessionID, "--address", address)
	if !ok || !strings.Contains(out, `"revoked":1`) || !strings.Contains(stderr, "revoked: 1 of 1 stores had the session") {
		t.Fatalf("revoke: ok %v\n%s%s", ok, out, stderr)
	}
	after, _ := askMe(t, gw, cookie)
	if len(after.Session) != 0 || after.ID == before.ID {
		t.Errorf("after the revocation the cookie still opens %+v", after)
	}

	// Again, with the admin address from the gateway's config: no store
	// has it any more.
	out, stderr, ok = sessionCommand(t, "", "revoke", report.SessionID, "--config", gw.caddyfile)
	if ok || !strings.Contains(out, `"revoked":0`) || !strings.Contains(stderr, "no store had session") {
		t.Errorf("revoke again: ok %v\n%s%s", ok, out, stderr)
	}
}
