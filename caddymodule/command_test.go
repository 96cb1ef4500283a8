package caddymodule

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/sessiongate/caddy-session/sessioncore"
)

const (
	cmdSecret    = "command-test-current-secret-0123456789abcdef"
	cmdFallback  = "command-test-previous-secret-0123456789abcdef"
	cmdAlien     = "command-test-unrelated-secret-0123456789abcdef"
	cmdEnvSecret = "command-test-secret-from-the-environment-0123"
)

// sealWith makes a cookie value called name with the codec and secret, as
// if issued at issued and created at created.
func sealWith(t *testing.T, codecName, secret, name, session string, issued, created time.Time) string {
	t.Helper()
	info, ok := sessioncore.LookupCodec(codecName)
	if !ok {
		t.Fatalf("no codec %s", codecName)
	}
	codec, err := info.New([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	v, err := codec.Encode(name, sessioncore.Payload{JSON: []byte(session), Issued: issued, Created: created})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// writeFile writes text to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// splitCookie has a manager with room for two cookies seal a session too
// large for one cookie, and returns its cookies as name=value pairs.
func splitCookie(t *testing.T, secret string) []string {
	t.Helper()
	codec, err := sessioncore.NewSecureCookieCodec([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	cfg := sessioncore.DefaultConfig()
	cfg.MaxCookieBytes = 8192
	m, err := sessioncore.NewManager(cfg, codec)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := m.Open(httptest.NewRequest(http.MethodGet, "/", nil))
	// Random bytes do not compress: hex of them fills two cookies.
	raw := make([]byte, 1800)
	for i := range raw {
		raw[i] = byte(i*7919 + i*i*31)
	}
	blob, _ := json.Marshal(base64.StdEncoding.EncodeToString(raw) + strings.Repeat("x", 1000))
	if err := s.Set("blob", blob); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if _, err := m.Save(context.Background(), s, h); err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for _, c := range (&http.Response{Header: h}).Cookies() {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	if len(pairs) < 2 {
		t.Fatalf("the session was not split: %q", h.Values("Set-Cookie"))
	}
	return pairs
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	secretFile := writeFile(t, dir, "secret", cmdSecret+"\n")
	fallbacksFile := writeFile(t, dir, "fallbacks", "# older secrets\n\n"+cmdFallback+"\n")
	t.Setenv("CMD_TEST_SECRET", cmdEnvSecret)
	caddyfile := writeFile(t, dir, "Caddyfile", `
:8081 {
	session {
		secret {env.CMD_TEST_SECRET}
		cookie_name first
	}
	respond ok
}
:8082 {
	session /app/* {
		secret {env.CMD_TEST_SECRET}
		secret_fallbacks_file `+fallbacksFile+`
		cookie_name sid
		lifetime 2h
		idle_timeout 30m
	}
	respond ok
}
:8083 {
	session {
		secret_file `+secretFile+`
		cookie_name stored
		store memory
	}
	respond ok
}
:8084 {
	session {
		secret {env.CMD_TEST_SECRET}
		cookie_name old
		revoke_before 2026-01-01T00:00:00Z
	}
	respond ok
}
`)
	jsonConfig := writeFile(t, dir, "caddy.json", `{"apps":{"http":{"servers":{"a":{"listen":[":8085"],"routes":[{"handle":[{"handler":"session","secret":"{env.CMD_TEST_SECRET}","codec":"flask"}]}]}}}}}`)

	now := time.Now().Truncate(time.Second)
	flags := inspectOptions{secretFile: secretFile, fallbacksFile: fallbacksFile, codec: "securecookie", cookieName: "session", lifetime: "31d"}
	valid := sealWith(t, "securecookie", cmdSecret, "session", `{"_permanent":true,"user":"alice"}`, now.Add(-time.Hour), now.Add(-48*time.Hour))
	split := splitCookie(t, cmdSecret)
	storedID := strings.Repeat("A", 43)

	tests := []struct {
		name    string
		opts    inspectOptions
		input   []string
		header  bool
		status  string
		session string // "" for none, "-" not checked
		check   func(t *testing.T, r inspectReport)
	}{
		{
			name: "valid", opts: flags, input: []string{valid},
			status: statusValid, session: `{"_permanent":true,"user":"alice"}`,
			check: func(t *testing.T, r inspectReport) {
				if !r.Issued.Equal(now.Add(-time.Hour)) || !r.Created.Equal(now.Add(-48*time.Hour)) {
					t.Errorf("issued %v, created %v", r.Issued, r.Created)
				}
				if !r.Expires.Equal(now.Add(-time.Hour).Add(31*24*time.Hour)) || r.Limit != "lifetime 31d" {
					t.Errorf("expires %v (%s)", r.Expires, r.Limit)
				}
			},
		},
		{
			name: "valid as a name=value pair", opts: flags, input: []string{"session=" + valid},
			status: statusValid, session: `{"_permanent":true,"user":"alice"}`,
		},
		{
			name: "valid in a Cookie header line", opts: flags, header: true, input: []string{"Cookie: lang=en; session=" + valid + "; theme=dark"},
			status: statusValid, session: `{"_permanent":true,"user":"alice"}`,
		},
		{
			name: "fallback key", opts: flags,
			input:  []string{sealWith(t, "securecookie", cmdFallback, "session", `{"user":"bob"}`, now.Add(-time.Minute), now.Add(-time.Minute))},
			status: statusFallback, session: `{"user":"bob"}`,
			check: func(t *testing.T, r inspectReport) {
				if r.Key == nil || *r.Key != 1 || !strings.Contains(r.Summary, "valid under fallback key 1") {
					t.Errorf("key %v: %s", r.Key, r.Summary)
				}
			},
		},
		{
			name: "expired", opts: flags,
			input:  []string{sealWith(t, "securecookie", cmdSecret, "session", `{"user":"carol"}`, now.Add(-32*24*time.Hour), now.Add(-40*24*time.Hour))},
			status: statusExpired, session: `{"user":"carol"}`,
			check: func(t *testing.T, r inspectReport) {
				issued := now.Add(-32 * 24 * time.Hour).UTC()
				expired := issued.Add(31 * 24 * time.Hour)
				if !r.Expires.Equal(expired) || r.Limit != "lifetime 31d" {
					t.Errorf("expired %v (%s)", r.Expires, r.Limit)
				}
				for _, want := range []string{"issued " + issued.Format(time.RFC3339), "expired " + expired.Format(time.RFC3339)} {
					if !strings.Contains(r.Summary, want) {
						t.Errorf("summary lacks %q: %s", want, r.Summary)
					}
				}
			},
		},
		{
			name: "issued in the future", opts: flags,
			input:  []string{sealWith(t, "securecookie", cmdSecret, "session", `{"user":"dave"}`, now.Add(10*time.Minute), now.Add(10*time.Minute))},
			status: statusFuture, session: `{"user":"dave"}`,
			check: func(t *testing.T, r inspectReport) {
				if !strings.Contains(r.Summary, "10m ahead") {
					t.Errorf("summary: %s", r.Summary)
				}
			},
		},
		{
			name: "tampered", opts: flags, input: []string{tamper(valid)},
			status: statusBadSig,
		},
		{
			name: "another secret", opts: flags,
			input:  []string{sealWith(t, "securecookie", cmdAlien, "session", `{"user":"eve"}`, now, now)},
			status: statusBadSig,
		},
		{
			name: "another cookie name", opts: with(flags, func(o *inspectOptions) { o.cookieName = "other" }), input: []string{valid},
			status: statusBadSig,
		},
		{
			name: "not a cookie at all", opts: flags, input: []string{"hello"},
			status: statusBadSig,
		},
		{
			name: "no session cookie in the line", opts: flags, header: true, input: []string{"lang=en"},
			status: statusNoCookie,
		},
		{
			name: "undecodable", opts: flags,
			input:  []string{sealWith(t, "securecookie", cmdSecret, "session", `not json`, now, now)},
			status: statusUndecoded,
		},
		{
			name: "split cookie", opts: flags, input: split,
			status: statusValid, session: "-",
			check: func(t *testing.T, r inspectReport) {
				if r.Parts != len(split) || !strings.Contains(string(r.Session), `"blob":`) {
					t.Errorf("parts %d of %d, session %.40s", r.Parts, len(split), r.Session)
				}
			},
		},
		{
			name: "split cookie in a Cookie line", opts: flags, header: true, input: []string{"a=b; " + strings.Join(split, "; ")},
			status: statusValid, session: "-",
		},
		{
			name: "split cookie with a part missing", opts: flags, input: split[:len(split)-1],
			status: statusNoPart,
			check: func(t *testing.T, r inspectReport) {
				if !strings.Contains(r.Summary, "session."+itoa(len(split)-1)+" is not in the input") {
					t.Errorf("summary: %s", r.Summary)
				}
			},
		},
		{
			name: "flask codec", opts: with(flags, func(o *inspectOptions) { o.codec = "flask" }),
			input:  []string{sealWith(t, "flask", cmdSecret, "session", `{"cart":{" t":[1,2]},"user":"frank"}`, now.Add(-time.Minute), time.Time{})},
			status: statusValid, session: `{"cart":[1,2],"user":"frank"}`,
			check: func(t *testing.T, r inspectReport) {
				if r.Created != nil {
					t.Errorf("a Flask cookie has no creation time, got %v", r.Created)
				}
			},
		},
		{
			name: "flask codec, fallback key", opts: with(flags, func(o *inspectOptions) { o.codec = "flask" }),
			input:  []string{sealWith(t, "flask", cmdFallback, "session", `{"user":"grace"}`, now.Add(-time.Minute), time.Time{})},
			status: statusFallback, session: `{"user":"grace"}`,
		},
		{
			name: "a securecookie cookie read as flask", opts: with(flags, func(o *inspectOptions) { o.codec = "flask" }), input: []string{valid},
			status: statusBadSig,
		},
		{
			name: "config: the first handler", opts: inspectOptions{configFile: caddyfile},
			input:  []string{"first=" + sealWith(t, "securecookie", cmdEnvSecret, "first", `{"user":"heidi"}`, now, now)},
			status: statusValid, session: `{"user":"heidi"}`,
			check: func(t *testing.T, r inspectReport) {
				if !strings.Contains(r.Settings, "(the first of 4; --cookie-name chooses)") {
					t.Errorf("settings: %s", r.Settings)
				}
			},
		},
		{
			name: "config: the handler --cookie-name names, with its fallbacks file", opts: inspectOptions{configFile: caddyfile, cookieName: "sid", cookieNameSet: true},
			input:  []string{sealWith(t, "securecookie", cmdFallback, "sid", `{"user":"ivan"}`, now.Add(-10*time.Minute), now.Add(-10*time.Minute))},
			status: statusFallback, session: `{"user":"ivan"}`,
			check: func(t *testing.T, r inspectReport) {
				if !r.Expires.Equal(now.Add(20*time.Minute)) || r.Limit != "idle_timeout 30m" {
					t.Errorf("expires %v (%s)", r.Expires, r.Limit)
				}
			},
		},
		{
			name: "config: idle timeout", opts: inspectOptions{configFile: caddyfile, cookieName: "sid", cookieNameSet: true},
			input:  []string{sealWith(t, "securecookie", cmdEnvSecret, "sid", `{"user":"judy"}`, now.Add(-40*time.Minute), now.Add(-40*time.Minute))},
			status: statusExpired, session: `{"user":"judy"}`,
			check: func(t *testing.T, r inspectReport) {
				if !r.Expires.Equal(now.Add(-10*time.Minute)) || r.Limit != "idle_timeout 30m" {
					t.Errorf("expired %v (%s)", r.Expires, r.Limit)
				}
			},
		},
		{
			name: "config: a store's cookie carries the ID", opts: inspectOptions{configFile: caddyfile, cookieName: "stored", cookieNameSet: true},
			input:  []string{sealWith(t, "securecookie", cmdSecret, "stored", `{"sid":"`+storedID+`"}`, now, now)},
			status: statusValid, session: `{"sid":"` + storedID + `"}`,
			check: func(t *testing.T, r inspectReport) {
				if r.Store != "memory" || r.SessionID != storedID {
					t.Errorf("store %q, id %q", r.Store, r.SessionID)
				}
			},
		},
		{
			name: "config: revoke_before", opts: inspectOptions{configFile: caddyfile, cookieName: "old", cookieNameSet: true},
			input:  []string{sealWith(t, "securecookie", cmdEnvSecret, "old", `{"user":"mallory"}`, now.Add(-time.Hour), time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC))},
			status: statusRevoked, session: `{"user":"mallory"}`,
			check: func(t *testing.T, r inspectReport) {
				if !strings.Contains(r.Summary, "created 2025-12-31T00:00:00Z, before revoke_before 2026-01-01T00:00:00Z") {
					t.Errorf("summary: %s", r.Summary)
				}
			},
		},
		{
			name: "config: JSON, flask codec", opts: inspectOptions{configFile: jsonConfig},
			input:  []string{sealWith(t, "flask", cmdEnvSecret, "session", `{"user":"niaj"}`, now, time.Time{})},
			status: statusValid, session: `{"user":"niaj"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setup, err := tt.opts.setup()
			if err != nil {
				t.Fatal(err)
			}
			h, err := cookieHeader(tt.input, tt.header, setup.config.CookieName)
			if err != nil {
				t.Fatal(err)
			}
			r := setup.inspect(h, now)
			if r.Status != tt.status {
				t.Fatalf("status %s, want %s: %s", r.Status, tt.status, r.Summary)
			}
			if wantValid := tt.status == statusValid || tt.status == statusFallback; r.Valid != wantValid {
				t.Errorf("valid %v", r.Valid)
			}
			if tt.session != "-" && string(r.Session) != tt.session {
				t.Errorf("session %s, want %s", r.Session, tt.session)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
			var out bytes.Buffer
			if err := r.write(&out); err != nil {
				t.Fatal(err)
			}
			js, _ := json.Marshal(r)
			for _, secret := range []string{cmdSecret, cmdFallback, cmdEnvSecret} {
				if strings.Contains(out.String()+string(js), secret) {
					t.Errorf("the report shows a secret:\n%s", out.String())
				}
			}
			if !strings.HasPrefix(out.String(), r.Summary+"\n") {
				t.Errorf("the report does not start with its summary:\n%s", out.String())
			}
		})
	}
}

func with(o inspectOptions, change func(*inspectOptions)) inspectOptions {
	change(&o)
	return o
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// tamper changes one character in the middle of a cookie value.
func tamper(v string) string {
	b := []byte(v)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestInspectSetupErrorsNameFilesNotContents(t *testing.T) {
	dir := t.TempDir()
	short := writeFile(t, dir, "short", "tooshort-s3cr3t\n")
	empty := writeFile(t, dir, "empty", "\n")
	t.Setenv("CMD_TEST_SHORT", "sh0rt-s3cr3t")
	caddyfile := writeFile(t, dir, "Caddyfile", ":8081 {\n\tsession {\n\t\tsecret {env.CMD_TEST_SHORT}\n\t}\n\trespond ok\n}\n")
	none := writeFile(t, dir, "none.caddyfile", ":8081 {\n\trespond ok\n}\n")
	tests := []struct {
		name string
		opts inspectOptions
		want string
	}{
		{"no secret", inspectOptions{codec: "securecookie", cookieName: "session", lifetime: "31d"}, "needs --secret-file"},
		{"missing file", inspectOptions{secretFile: filepath.Join(dir, "nope"), codec: "securecookie", cookieName: "session", lifetime: "31d"}, filepath.Join(dir, "nope")},
		{"empty file", inspectOptions{secretFile: empty, codec: "securecookie", cookieName: "session", lifetime: "31d"}, empty + " is empty"},
		{"short secret", inspectOptions{secretFile: short, codec: "securecookie", cookieName: "session", lifetime: "31d"}, "15 bytes"},
		{"unknown codec", inspectOptions{secretFile: short, codec: "jwt", cookieName: "session", lifetime: "31d"}, "want one of cookie-session, django, flask, "},
		{"bad lifetime", inspectOptions{secretFile: short, codec: "flask", cookieName: "session", lifetime: "soon"}, "--lifetime"},
		{"codec options the codec does not take", inspectOptions{secretFile: short, codec: "flask", codecOptions: map[string]string{"salt": "x"}, cookieName: "session", lifetime: "31d"}, "codec flask takes no options, got salt"},
		{"short secret in a config", inspectOptions{configFile: caddyfile}, "12 bytes"},
		{"no handler", inspectOptions{configFile: none}, "has no session handler"},
		{"no handler of that cookie name", inspectOptions{configFile: caddyfile, cookieName: "sid", cookieNameSet: true}, "no session handler with cookie_name sid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.opts.setup()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q in it", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		31 * 24 * time.Hour:                    "31d",
		30 * time.Minute:                       "30m",
		2 * time.Hour:                          "2h",
		90 * time.Minute:                       "1h30m",
		36 * time.Hour:                         "1d12h",
		24*time.Hour + 90*time.Second:          "1d1m30s",
		10 * time.Second:                       "10s",
		roughly(30*24*time.Hour - time.Second): "30d",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("%v: %s, want %s", d, got, want)
		}
	}
}

func TestCookieHeaderInput(t *testing.T) {
	tests := []struct {
		input   []string
		header  bool
		want    []string
		wantErr string
	}{
		{input: []string{"abc=="}, want: []string{"session=abc=="}},
		{input: []string{"session=abc=="}, want: []string{"session=abc=="}},
		{input: []string{"session=2!ab", "session.1=cd"}, want: []string{"session=2!ab; session.1=cd"}},
		{input: []string{"Cookie: a=b; session=x", "session.1=y"}, header: true, want: []string{"a=b; session=x", "session.1=y"}},
		{input: []string{"abc", "def"}, wantErr: "give each as name=value"},
		{input: []string{"sid=abc"}, wantErr: `cookie "sid" is neither "session" nor one of its parts`},
	}
	for _, tt := range tests {
		h, err := cookieHeader(tt.input, tt.header, "session")
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want %q", tt.input, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.input, err)
		case strings.Join(h.Values("Cookie"), "\n") != strings.Join(tt.want, "\n"):
			t.Errorf("%q: Cookie %q, want %q", tt.input, h.Values("Cookie"), tt.want)
		}
	}
}

// runSession runs caddy session with args and stdin, as the command line
// would, and returns what it printed and its error.
func runSession(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := &cobra.Command{Use: "caddy", SilenceUsage: true}
	session := &cobra.Command{Use: "session"}
	session.AddCommand(newSecretCommand(), newInspectCommand(), newRevokeCommand())
	root.AddCommand(session)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"session"}, args...))
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func TestSecretCommand(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		out, _, err := runSession(t, "", "secret")
		if err != nil {
			t.Fatal(err)
		}
		secret, ok := strings.CutSuffix(out, "\n")
		if !ok || len(secret) != 43 {
			t.Fatalf("secret %q: want 43 characters and a newline", out)
		}
		raw, err := base64.RawURLEncoding.DecodeString(secret)
		if err != nil || len(raw) != 32 {
			t.Fatalf("secret %q: %d bytes, %v", secret, len(raw), err)
		}
		if seen[secret] {
			t.Fatal("the same secret twice")
		}
		seen[secret] = true
		// The handler takes it as it is.
		if _, err := sessioncore.NewSecureCookieCodec([]byte(secret)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestInspectCommand(t *testing.T) {
	dir := t.TempDir()
	secretFile := writeFile(t, dir, "secret", cmdSecret)
	now := time.Now()
	valid := sealWith(t, "securecookie", cmdSecret, "session", `{"user":"alice"}`, now, now)

	out, _, err := runSession(t, "", "inspect", "--secret-file", secretFile, "--", valid)
	if err != nil || !strings.HasPrefix(out, "valid: opened with the current secret\n") || !strings.Contains(out, `"user": "alice"`) {
		t.Fatalf("valid cookie: %v\n%s", err, out)
	}
	// From standard input, as JSON.
	out, _, err = runSession(t, "\n"+valid+"\n", "inspect", "--secret-file", secretFile, "--json")
	var report map[string]any
	if err != nil || json.Unmarshal([]byte(out), &report) != nil || report["status"] != "valid" || report["valid"] != true {
		t.Fatalf("valid cookie from stdin: %v\n%s", err, out)
	}
	if s, _ := report["session"].(map[string]any); s["user"] != "alice" {
		t.Errorf("session %v", report["session"])
	}
	// Rejected: exit status 1, with nothing printed but the report.
	out, stderr, err := runSession(t, tamper(valid), "inspect", "--secret-file", secretFile)
	if !errors.Is(err, errReported) || !strings.HasPrefix(out, "rejected: bad signature") || stderr != "" {
		t.Fatalf("tampered cookie: %v\n%s%s", err, out, stderr)
	}
	// Flags that contradict --config.
	_, _, err = runSession(t, valid, "inspect", "--config", filepath.Join(dir, "Caddyfile"), "--codec", "flask")
	if err == nil || !strings.Contains(err.Error(), "--codec and --config") {
		t.Errorf("--config with --codec: %v", err)
	}
	_, _, err = runSession(t, valid, "inspect", "--secret-file", secretFile, "--codec-option", "salt")
	if err == nil || !strings.Contains(err.Error(), `--codec-option takes name=value, not "salt"`) {
		t.Errorf("--codec-option without a value: %v", err)
	}
}

func TestRevokeCommand(t *testing.T) {
	var answer string
	status := http.StatusOK
	var got struct{ ID string }
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/session/revoke" {
			http.Error(w, "wrong request", http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &got); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	defer admin.Close()
	addr := strings.TrimPrefix(admin.URL, "http://")

	tests := []struct {
		name, answer string
		status       int
		ok           bool
		note         string
	}{
		{"revoked", `{"revoked":1,"stores":[{"store":"memory (cookie session)","revoked":true}]}`, 200, true, "revoked: 1 of 1 stores"},
		{"unknown", `{"revoked":0,"stores":[{"store":"memory (cookie session)","revoked":false}]}`, 200, false, "no store had session"},
		{"no stores", `{"revoked":0,"stores":[]}`, 200, false, "no server-side store"},
		{"one store failed", `{"revoked":1,"stores":[{"store":"memory (cookie session)","revoked":true},{"store":"redis x","revoked":false,"error":"down"}]}`, 200, false, "store redis x failed: down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer, status = tt.answer, tt.status
			out, stderr, err := runSession(t, "", "revoke", "the-id", "--address", addr)
			if got.ID != "the-id" {
				t.Errorf("the admin API got id %q", got.ID)
			}
			if (err == nil) != tt.ok || out != tt.answer || !strings.Contains(stderr, tt.note) {
				t.Errorf("error %v, out %q, stderr %q", err, out, stderr)
			}
		})
	}
	t.Run("every store failed", func(t *testing.T) {
		answer, status = `{"revoked":0,"stores":[{"store":"redis x","revoked":false,"error":"down"}],"error":"revoking: no store answered"}`, 503
		_, _, err := runSession(t, "", "revoke", "the-id", "--address", addr)
		if err == nil || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "no store answered") {
			t.Errorf("error %v", err)
		}
	})
}

// expiringCodec stands for a format with an expiry of its own and no issue
// time (Rails'): every value opens as session with the expiry expires.
type expiringCodec struct {
	session string
	expires time.Time
}

func (c expiringCodec) Encode(string, sessioncore.Payload) (string, error) {
	return "", errors.New("not for sealing")
}

func (c expiringCodec) Decode(_, value string) (sessioncore.Payload, int, error) {
	return sessioncore.Payload{JSON: []byte(c.session), Expires: c.expires}, 0, nil
}

func TestInspectAFormatWithItsOwnExpiry(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	for _, tt := range []struct {
		expires time.Time
		status  string
	}{
		{now.Add(time.Hour), statusValid},
		{now.Add(-time.Minute), statusExpired},
	} {
		s := &inspectSetup{codec: expiringCodec{`{"user":"olivia"}`, tt.expires}, config: sessioncore.DefaultConfig(), source: "test"}
		r := s.inspect(http.Header{"Cookie": {"session=anything"}}, now)
		if r.Status != tt.status || !r.IssuedAssumed || r.Expires == nil || !r.Expires.Equal(tt.expires) || r.Limit != "the expiry the cookie carries" {
			t.Errorf("expires %v: %+v", tt.expires, r)
		}
		if want := tt.expires.Add(-31 * 24 * time.Hour); !r.Issued.Equal(want) {
			t.Errorf("issued %v, want %v (a lifetime before the expiry)", r.Issued, want)
		}
		if string(r.Session) != `{"user":"olivia"}` {
			t.Errorf("session %s", r.Session)
		}
		var out bytes.Buffer
		_ = r.write(&out)
		if !strings.Contains(out.String(), "assumed: the cookie's format carries no issue time") {
			t.Errorf("report:\n%s", out.String())
		}
	}
}
