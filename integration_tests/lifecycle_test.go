package integration_tests

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiongate/caddy-session/internal/redistest"
)

// TestSecretFilesAreReadAgainOnReload rotates the key the way an operator
// would: a new secret in secret_file, the old one in secret_fallbacks_file,
// then a reload. Sessions signed with the old key keep working.
func TestSecretFilesAreReadAgainOnReload(t *testing.T) {
	dir := t.TempDir()
	secretFile, fallbacksFile := filepath.Join(dir, "secret"), filepath.Join(dir, "fallbacks")
	write := func(path, text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(secretFile, currentSecret+"\n")
	write(fallbacksFile, "# none yet\n")
	up := startUpstream(t, appRoutes())
	site := `
	session {
		secret_file ` + secretFile + `
		secret_fallbacks_file ` + fallbacksFile + `
	}
	reverse_proxy {upstream}
`
	gw := startGateway(t, up.Addr(), site)
	resp, _ := get(t, gw.URL+"/login", "")
	old := sessionCookie(t, resp).Value

	write(secretFile, "a-brand-new-secret-0123456789abcdef0123456789\n")
	write(fallbacksFile, "# the previous key\n"+currentSecret+"\n")
	caddyfile, err := os.ReadFile(gw.caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, gw.Admin+"/load", strings.NewReader(string(caddyfile)))
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate") // reload even though the config text is the same
	if resp, body := do(t, req); resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %d %s", resp.StatusCode, body)
	}

	if _, body := get(t, gw.URL+"/me", old); body != `{"user":"alice"}` {
		t.Errorf("after the reload, the old session opened as %s", body)
	}
	resp, _ = get(t, gw.URL+"/cart", old)
	reissued := sessionCookie(t, resp).Value
	if opensWithCurrentSecretOnly(t, reissued) {
		t.Error("the reissued cookie is still sealed with the old key")
	}
	if strings.Contains(gw.Log(), currentSecret) {
		t.Error("a secret from a file appears in the log")
	}
}

func TestMetricsOnTheAdminEndpoint(t *testing.T) {
	server := redistest.Start(t)
	up := startUpstream(t, map[string]http.HandlerFunc{
		"/login":  setsSession("X-Session-Update", `{"user":"alice","_permanent":true}`),
		"/logout": setsSession("X-Session-Replace", `{}`),
		"/bad":    setsSession("X-Session-Update", `nope`),
	})
	gw := startGateway(t, up.Addr(), redisSite(server, ""))
	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp).Value
	get(t, gw.URL+"/other", login) // a permanent refresh
	get(t, gw.URL+"/bad", login)
	get(t, gw.URL+"/logout", login)
	get(t, gw.URL+"/other", "tampered")

	resp, body := get(t, gw.Admin+"/metrics", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`caddy_session_opened_total{outcome="new"} 1`,
		`caddy_session_opened_total{outcome="valid"} 3`,
		`caddy_session_opened_total{outcome="bad_signature"} 1`,
		`caddy_session_cookies_total{action="set"} 1`,
		`caddy_session_cookies_total{action="refreshed"} 1`,
		`caddy_session_cookies_total{action="deleted"} 1`,
		`caddy_session_cookies_total{action="suppressed"} 1`,
		`caddy_session_mutations_total{result="applied"} 2`,
		`caddy_session_mutations_total{result="rejected"} 1`,
		`caddy_session_cookie_size_bytes_count 2`,
		`caddy_session_store_duration_seconds_count{op="load"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
