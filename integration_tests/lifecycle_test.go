package integration_tests

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
