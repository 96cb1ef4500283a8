package caddymodule

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// The operator's command, caddy session, with its subcommands secret,
// inspect and revoke.

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "session",
		Usage: "secret | inspect [<cookie>...] | revoke <id>",
		Short: "Makes session secrets, inspects session cookies, revokes sessions",
		Long: `
Tools for operating the session gateway (the session handler):

  caddy session secret                 print a new random secret
  caddy session inspect [<cookie>...]  open a session cookie and say why
                                       the gateway accepts or rejects it
  caddy session revoke <id>            revoke a server-side session through
                                       the admin API of a running Caddy

See 'caddy session <subcommand> --help' for each.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(newSecretCommand(), newInspectCommand(), newRevokeCommand())
			cmd.Args = cobra.NoArgs
			cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		},
	})
}

// errReported is returned by a command that has said why it fails: the
// process exits with status 1 and nothing more is printed.
var errReported = errors.New("reported")

// reported makes cmd fail with status 1 without printing anything more.
func reported(cmd *cobra.Command) error {
	cmd.SilenceErrors = true
	return errReported
}

// secretBytes is how many random bytes a new secret has: HMAC-SHA256 and
// AES-256 keys are derived from it, and 32 bytes are what they need.
const secretBytes = 32

func newSecretCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "secret",
		Short: "Prints a new random session secret",
		Long: `
Prints a new secret for the session handler's secret (or secret_fallbacks):
32 random bytes from the operating system's random generator, written in
URL-safe base64 without padding, so 43 characters of A-Z, a-z, 0-9, - and _.
The handler uses the 43 characters as they are (it does not decode them),
so they fit a Caddyfile, an environment variable or a secrets file without
quoting. The same text serves as a Flask SECRET_KEY for codec flask.

  export SESSION_SECRET=$(caddy session secret)
  caddy session secret > /run/secrets/session   # for secret_file or {file.*}

Rotate a key by putting the new secret in secret and the old one first in
secret_fallbacks.
`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := newSecret()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), secret)
			return err
		},
	}
}

// newSecret returns a new random secret, 32 bytes in unpadded base64url.
func newSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func newRevokeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke (<id> | --user <user>) [--address <admin address>] [--config <file> [--adapter <name>]]",
		Short: "Revokes a server-side session through the admin API",
		Long: `
Revokes the server-side session with the given ID in every memory and Redis
store of a running Caddy's config, through its admin API: it POSTs
{"id": "<id>"} to /session/revoke and prints the answer, one entry per store:

  caddy session revoke 2YvsBS3ff1VrPPqWlAu-KFCUBW-vnG9mrrY-ehwt2tY
  {"revoked":1,"stores":[{"store":"memory (cookie session)","revoked":true}]}

The ID is the one the upstream receives in X-Session-Id, or the one
'caddy session inspect' shows for a cookie of a site with a store. IDs
issued since 2026-11-29 never begin with '-'; for an older one that does,
write -- before it: caddy session revoke -- -YEbl0Wrt.... The
session's cookie opens nothing afterwards: its next request gets a new, empty
session.

The admin API is reached at --address (default ` + caddy.DefaultAdminListen + `), or at the
admin address of the config given with --config, as for 'caddy reload'.

The exit status is 0 when a store had the session and every store answered;
1 when no store had it (wrong ID, already revoked or expired, or a config
without server-side stores: cookie sessions are revoked all at once with
revoke_before), or when a store failed: its error is in the answer, and the
session may still live there, so revoke again once it is back.

With --user instead of an ID, every session of that user created until now
is revoked, cookie sessions included, in every revocation_store of the
config ({"user": "<user>"}): each instance sees it within its staleness
bound. The exit status is 0 when a map took it.
`,
		Args: func(cmd *cobra.Command, args []string) error {
			if user, _ := cmd.Flags().GetString("user"); user != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
	}
	cmd.Flags().String("user", "", "Revoke every session of this user (needs a revocation_store)")
	cmd.Flags().String("address", "", "The address of Caddy's admin API (default "+caddy.DefaultAdminListen+")")
	cmd.Flags().StringP("config", "c", "", "The config file to read the admin address from, if --address is not given")
	cmd.Flags().StringP("adapter", "a", "", "The config adapter of --config")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		fl := caddycmd.Flags{FlagSet: cmd.Flags()}
		addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
		if err != nil {
			return fmt.Errorf("finding the admin API: %w", err)
		}
		if user := fl.String("user"); user != "" {
			return revokeUser(addr, user, cmd.OutOrStdout())
		}
		ok, err := revoke(addr, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		if !ok {
			return reported(cmd)
		}
		return nil
	}
	return cmd
}

// revokeUser asks the admin API at addr to revoke every session of user,
// and prints its answer.
func revokeUser(addr, user string, out io.Writer) error {
	body, _ := json.Marshal(map[string]string{"user": user})
	resp, err := caddycmd.AdminAPIRequest(addr, http.MethodPost, "/session/revoke", nil, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("revoking user %s: %w", user, err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(out, resp.Body)
	return err
}

// revoke asks the admin API at addr to revoke the session id, prints its
// answer to out and a word on it to notes, and reports whether a store
// had the session and none failed.
func revoke(addr, id string, out, notes io.Writer) (bool, error) {
	body, err := json.Marshal(map[string]string{"id": id})
	if err != nil {
		return false, err
	}
	resp, err := caddycmd.AdminAPIRequest(addr, http.MethodPost, "/session/revoke", nil, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("revoking through the admin API at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false, fmt.Errorf("reading the admin API's answer: %w", err)
	}
	if _, err := out.Write(raw); err != nil {
		return false, err
	}
	var answer revokeAnswer
	if err := json.Unmarshal(raw, &answer); err != nil {
		return false, fmt.Errorf("the admin API's answer is not what /session/revoke answers: %w", err)
	}
	failed := 0
	for _, s := range answer.Stores {
		if s.Error != "" {
			failed++
			fmt.Fprintf(notes, "store %s failed: %s; the session may still live there: revoke again once it is back\n", s.Store, s.Error)
		}
	}
	switch {
	case len(answer.Stores) == 0:
		fmt.Fprintln(notes, "the loaded config has no server-side store (memory or redis): cookie sessions cannot be revoked one by one; see revoke_before")
		return false, nil
	case answer.Revoked == 0 && failed == 0:
		fmt.Fprintf(notes, "no store had session %s: a wrong ID, or one already revoked, logged out or expired\n", id)
		return false, nil
	case answer.Revoked > 0:
		fmt.Fprintf(notes, "revoked: %d of %d stores had the session\n", answer.Revoked, len(answer.Stores))
	}
	return answer.Revoked > 0 && failed == 0, nil
}

func newInspectCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect [<cookie>...] (--secret-file <path> | --config <file>) [flags]",
		Short: "Opens a session cookie and tells whether the gateway accepts it",
		Long: `
Opens a session cookie as the session handler would, and prints its status
and the session it carries:

  valid                      opened with the current secret
  valid under fallback key N opened with the N-th fallback secret; reissued
                             under the current one when next written
  expired                    issued (or unused, with idle_timeout, or created,
                             with absolute_lifetime) longer ago than allowed;
                             when it was issued and when it expired
  issued in the future       issued more than 1m ahead of this clock
  revoked                    created before revoke_before
  rejected                   and why: bad signature (tampered with, made with
                             another secret, codec or cookie name, truncated),
                             undecodable (signed, but unreadable), a part of a
                             split cookie missing, or too large

An expired or revoked cookie is still authentic, so its session is shown too.
With a server-side store the cookie carries only the session's ID, which is
shown for 'caddy session revoke'. The exit status is 0 when the gateway
accepts the cookie (valid, with any key) and 1 otherwise.

The cookie is read from the arguments or, when there are none, from standard
input (which keeps it out of the shell's history):

  caddy session inspect --secret-file /run/secrets/session 'MTc2...'
  pbpaste | caddy session inspect --secret-file /run/secrets/session

A value alone is the cookie called --cookie-name. A session too large for one
cookie is split over several, session=3!... session.1=... session.2=...: give
them all as name=value pairs, or a whole Cookie header line (as a browser's
developer tools copy it, with or without "Cookie:") with --cookie-header:

  caddy session inspect -c Caddyfile 'session=3!...' 'session.1=...' 'session.2=...'
  caddy session inspect -c Caddyfile --cookie-header 'lang=en; session=3!...; session.1=...'

A value that starts with - goes after --.

The secrets and settings come from flags, or from the first session handler
of a config with --config:

--secret-file <path>     the secret, as the handler's secret_file reads it
--fallbacks-file <path>  fallback secrets, one per line, as secret_fallbacks_file
--codec <name>           securecookie (default), flask, or another codec the
                         binary has (see the flag's list below)
--codec-option <n>=<v>   an option of the codec, as codec_options (repeatable)
--cookie-name <name>     the cookie's name (default session, or the codec's
                         own, such as Django's sessionid); the securecookie
                         codec signs the name, so it must be the right one
--lifetime <duration>    the handler's lifetime (default 31d)

--config <file>          a Caddyfile or JSON config; the secret, fallbacks
                         (with their {env.*} and {file.*} placeholders and
                         files), codec, cookie name, lifetimes, revoke_before
                         and cookie limits are those of its first session
                         handler, or of the first whose cookie_name is
                         --cookie-name when that is given
--adapter <name>         the config's adapter (a file called Caddyfile or
                         *.caddyfile is adapted with caddyfile by default)

With flags, a cookie split over any number of parts, and any size, is read;
with --config, the handler's max_cookie_parts and max_cookie_bytes apply.

--json prints the result as one JSON object instead.

No secret is ever printed, nor any part of one; errors name the files that
hold secrets, never their contents.
`,
	}
	f := cmd.Flags()
	f.String("secret-file", "", "File holding the secret (required unless --config)")
	f.String("fallbacks-file", "", "File of fallback secrets, one per line")
	f.String("codec", sessioncore.SecureCookieCodecName, "The cookie's codec: "+strings.Join(sessioncore.CodecNames(), ", "))
	f.StringArray("codec-option", nil, "An option of the codec, name=value (repeatable)")
	f.String("cookie-name", "", "The session cookie's name (default: session, or the codec's own)")
	f.String("lifetime", "31d", "The sessions' lifetime (Caddy duration)")
	f.StringP("config", "c", "", "Take the settings from the first session handler of this config")
	f.StringP("adapter", "a", "", "The config adapter of --config")
	f.Bool("cookie-header", false, "The input is a whole Cookie header line")
	f.Bool("json", false, "Print the result as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		opts, err := inspectOptionsFromFlags(cmd.Flags())
		if err != nil {
			return err
		}
		setup, err := opts.setup()
		if err != nil {
			return err
		}
		input, err := readCookieInput(cmd, args)
		if err != nil {
			return err
		}
		header, err := cookieHeader(input, opts.cookieHeader, setup.config.CookieName)
		if err != nil {
			return err
		}
		report := setup.inspect(header, time.Now())
		if opts.json {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			err = enc.Encode(report)
		} else {
			err = report.write(cmd.OutOrStdout())
		}
		if err != nil {
			return err
		}
		if !report.Valid {
			return reported(cmd)
		}
		return nil
	}
	return cmd
}

// inspectOptions are the flags of caddy session inspect.
type inspectOptions struct {
	secretFile, fallbacksFile string
	codec, cookieName         string
	codecOptions              map[string]string
	lifetime                  string
	configFile, adapter       string
	// cookieNameSet says --cookie-name was given, to choose among the
	// handlers of a config.
	cookieNameSet bool
	cookieHeader  bool
	json          bool
}

func inspectOptionsFromFlags(fs interface {
	GetString(string) (string, error)
	GetStringArray(string) ([]string, error)
	GetBool(string) (bool, error)
	Changed(string) bool
}) (inspectOptions, error) {
	fl := func(name string) string { v, _ := fs.GetString(name); return v }
	b := func(name string) bool { v, _ := fs.GetBool(name); return v }
	o := inspectOptions{
		secretFile:    fl("secret-file"),
		fallbacksFile: fl("fallbacks-file"),
		codec:         fl("codec"),
		cookieName:    fl("cookie-name"),
		lifetime:      fl("lifetime"),
		configFile:    fl("config"),
		adapter:       fl("adapter"),
		cookieNameSet: fl("cookie-name") != "",
		cookieHeader:  b("cookie-header"),
		json:          b("json"),
	}
	options, _ := fs.GetStringArray("codec-option")
	for _, option := range options {
		name, value, ok := strings.Cut(option, "=")
		if !ok || name == "" {
			return o, fmt.Errorf("--codec-option takes name=value, not %q", option)
		}
		if o.codecOptions == nil {
			o.codecOptions = map[string]string{}
		}
		o.codecOptions[name] = value
	}
	if o.configFile != "" {
		for _, name := range []string{"secret-file", "fallbacks-file", "codec", "codec-option", "lifetime"} {
			if fs.Changed(name) {
				return o, fmt.Errorf("--%s and --config: with --config, the secrets, codec and lifetime are the config's", name)
			}
		}
	} else if o.adapter != "" {
		return o, errors.New("--adapter needs --config")
	}
	return o, nil
}

// inspectSetup is what opening a cookie takes: the codec with its keys
// and the manager's configuration.
type inspectSetup struct {
	codec  sessioncore.Codec
	config sessioncore.Config
	// source says where the settings came from, for the report.
	source string
	// store is the type of the handler's server-side store, if it has one.
	store string
}

// setup reads the secrets and makes the codec, from the flags or the
// config.
func (o inspectOptions) setup() (*inspectSetup, error) {
	if o.configFile != "" {
		return o.setupFromConfig()
	}
	if o.secretFile == "" {
		return nil, errors.New("inspect needs --secret-file <path> or --config <file>")
	}
	current, err := readSecretFile(o.secretFile)
	if err != nil {
		return nil, err
	}
	var fallbacks [][]byte
	if o.fallbacksFile != "" {
		if fallbacks, err = readFallbacksFile(o.fallbacksFile); err != nil {
			return nil, err
		}
	}
	info, ok := sessioncore.LookupCodec(o.codec)
	if !ok {
		return nil, fmt.Errorf("unknown codec %q; want one of %s", o.codec, strings.Join(sessioncore.CodecNames(), ", "))
	}
	codec, err := info.Make(o.codecOptions, []byte(current), fallbacks...)
	if err != nil {
		return nil, fmt.Errorf("session codec %s with the secret from %s: %w", info.Name, o.secretFile, err)
	}
	lifetime, err := caddy.ParseDuration(o.lifetime)
	if err != nil || lifetime <= 0 {
		return nil, fmt.Errorf("--lifetime must be a positive duration such as 31d or 12h, not %q", o.lifetime)
	}
	cfg := sessioncore.DefaultConfig()
	cfg.CookieName = cmp.Or(o.cookieName, info.DefaultCookieName, cfg.CookieName)
	cfg.Lifetime = lifetime
	// Whatever limits the handler has, the cookie is read whole.
	cfg.MaxCookieParts = sessioncore.MaxCookiePartsLimit
	cfg.MaxCookieBytes = sessioncore.MaxCookieBytesLimit
	if info.SharedWithApp {
		cfg.MaxCookieParts = 1
	}
	source := "secret from " + o.secretFile
	if len(fallbacks) > 0 {
		source += fmt.Sprintf(", %d fallback secrets from %s", len(fallbacks), o.fallbacksFile)
	}
	return &inspectSetup{codec: codec, config: cfg, source: source + ", codec " + info.Name}, nil
}

// setupFromConfig takes the settings of a session handler of the config.
func (o inspectOptions) setupFromConfig() (*inspectSetup, error) {
	adapted, err := adaptConfig(o.configFile, o.adapter)
	if err != nil {
		return nil, err
	}
	found, err := sessionHandlers(adapted)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", o.configFile, err)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%s has no session handler", o.configFile)
	}
	chosen := found[0]
	if o.cookieNameSet {
		i := slices.IndexFunc(found, func(f foundHandler) bool {
			info, _ := f.handler.codecInfo()
			return cmp.Or(f.handler.CookieName, info.DefaultCookieName, sessioncore.DefaultCookieName) == o.cookieName
		})
		if i < 0 {
			return nil, fmt.Errorf("%s has no session handler with cookie_name %s", o.configFile, o.cookieName)
		}
		chosen = found[i]
	}
	h := chosen.handler
	h.logger = zap.NewNop()
	// The handler's own steps: its secrets, codec and options.
	codec, err := h.provisionCodec()
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", o.configFile, chosen.path, err)
	}
	info, err := h.codecInfo()
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", o.configFile, chosen.path, err)
	}
	cfg, err := h.managerConfig()
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", o.configFile, chosen.path, err)
	}
	source := fmt.Sprintf("%s, the session handler at %s", o.configFile, chosen.path)
	switch {
	case len(found) > 1 && o.cookieNameSet:
		source += fmt.Sprintf(" (the first with cookie_name %s, of %d)", o.cookieName, len(found))
	case len(found) > 1:
		source += fmt.Sprintf(" (the first of %d; --cookie-name chooses)", len(found))
	}
	s := &inspectSetup{codec: codec, config: cfg, source: source + ", codec " + info.Name}
	if h.Store != nil && h.Store.Type != "" && h.Store.Type != storeCookie {
		s.store = h.Store.Type
	}
	return s, nil
}

// adaptConfig reads a config file and adapts it to JSON: with adapter,
// with the Caddyfile adapter for a file called Caddyfile* or *.caddyfile,
// as caddy run does, or as JSON.
func adaptConfig(path, adapter string) ([]byte, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	base := strings.ToLower(filepath.Base(path))
	if adapter == "" && filepath.Ext(base) != ".json" && (strings.HasPrefix(base, "caddyfile") || strings.HasSuffix(base, ".caddyfile")) {
		adapter = "caddyfile"
	}
	if adapter == "" {
		if !json.Valid(body) {
			return nil, fmt.Errorf("%s is not JSON; name its adapter with --adapter (caddyfile, say)", path)
		}
		return body, nil
	}
	a := caddyconfig.GetAdapter(adapter)
	if a == nil {
		return nil, fmt.Errorf("unknown config adapter %q", adapter)
	}
	adapted, _, err := a.Adapt(body, map[string]any{"filename": path})
	if err != nil {
		return nil, fmt.Errorf("adapting %s with %s: %w", path, adapter, err)
	}
	return adapted, nil
}

// foundHandler is a session handler of a config and where it is.
type foundHandler struct {
	path    string // as a JSON path: apps.http.servers.srv0.routes[0]...
	handler *Handler
}

// sessionHandlers returns the config's session handlers in the order a
// reader meets them: routes in order, object keys sorted.
func sessionHandlers(config []byte) ([]foundHandler, error) {
	var tree any
	if err := json.Unmarshal(config, &tree); err != nil {
		return nil, err
	}
	var found []foundHandler
	var walkErr error
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "session" {
				raw, _ := json.Marshal(v)
				h := new(Handler)
				if err := json.Unmarshal(raw, h); err != nil && walkErr == nil {
					walkErr = fmt.Errorf("the session handler at %s: %w", path, err)
				}
				found = append(found, foundHandler{path: path, handler: h})
				return
			}
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				walk(v[k], strings.TrimPrefix(path+"."+k, "."))
			}
		case []any:
			for i, e := range v {
				walk(e, path+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(tree, "")
	return found, walkErr
}

// maxCookieInput bounds what is read from standard input: far more than
// the largest Cookie line a server accepts.
const maxCookieInput = 1 << 20

// readCookieInput returns the cookie arguments, or standard input split
// into fields (lines, with --cookie-header) when there are none.
func readCookieInput(cmd *cobra.Command, args []string) ([]string, error) {
	if len(args) > 0 {
		return args, nil
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "reading the cookie from standard input (end with Ctrl-D)")
		}
	}
	data, err := io.ReadAll(io.LimitReader(in, maxCookieInput+1))
	if err != nil {
		return nil, fmt.Errorf("reading standard input: %w", err)
	}
	if len(data) > maxCookieInput {
		return nil, fmt.Errorf("standard input is longer than %d bytes", maxCookieInput)
	}
	header, _ := cmd.Flags().GetBool("cookie-header")
	var fields []string
	if header {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, maxCookieInput+1)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				fields = append(fields, line)
			}
		}
	} else {
		fields = strings.Fields(string(data))
	}
	if len(fields) == 0 {
		return nil, errors.New("no cookie given: pass it as an argument or on standard input")
	}
	return fields, nil
}

// cookieHeader turns the input into a request's Cookie header: whole
// Cookie lines with --cookie-header; otherwise one value alone (the
// cookie called name) or name=value pairs of the cookie and its parts.
func cookieHeader(input []string, wholeLines bool, name string) (http.Header, error) {
	h := http.Header{}
	if wholeLines {
		for _, line := range input {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "cookie") {
				line = v
			}
			h.Add("Cookie", strings.TrimSpace(line))
		}
		return h, nil
	}
	var pairs []string
	for _, field := range input {
		n, v, ok := strings.Cut(field, "=")
		// A sealed value never holds '=' but as base64 padding at its end.
		if !ok || strings.Trim(v, "=") == "" {
			if len(input) > 1 {
				return nil, fmt.Errorf("with several values, give each as name=value: %s=..., %s.1=...", name, name)
			}
			pairs = append(pairs, name+"="+field)
			continue
		}
		if n = strings.TrimSpace(n); n != name && !sessioncore.IsCookiePart(n, name) {
			return nil, fmt.Errorf("cookie %q is neither %q nor one of its parts; set --cookie-name, or use --cookie-header for a Cookie line", n, name)
		}
		pairs = append(pairs, n+"="+v)
	}
	h.Set("Cookie", strings.Join(pairs, "; "))
	return h, nil
}

// The statuses of an inspection, for --json.
const (
	statusValid     = "valid"
	statusFallback  = "fallback_key"
	statusExpired   = "expired"
	statusFuture    = "issued_in_future"
	statusRevoked   = "revoked"
	statusBadSig    = "bad_signature"
	statusUndecoded = "undecodable"
	statusNoPart    = "part_missing"
	statusTooLarge  = "too_large"
	statusNoCookie  = "no_cookie"
	statusNotOpened = "not_opened"
)

const rfc3339Seconds = time.RFC3339

// inspectReport is what inspect found.
type inspectReport struct {
	// Valid says the gateway accepts the cookie (with any key).
	Valid bool `json:"valid"`
	// Status is one of the status constants.
	Status string `json:"status"`
	// Summary says it in words.
	Summary string `json:"summary"`
	// Outcome is the session manager's own word for it.
	Outcome sessioncore.Outcome `json:"outcome,omitempty"`
	// Key is the secret that opened it: 0 the current one, N the N-th
	// fallback.
	Key *int `json:"key,omitempty"`
	// Parts is how many cookies the session was split over.
	Parts int `json:"parts,omitempty"`
	// Bytes is what its cookies take of the Cookie line.
	Bytes  int        `json:"bytes,omitempty"`
	Issued *time.Time `json:"issued,omitempty"`
	// IssuedAssumed says the cookie's format carries no issue time, and
	// Issued is the one the gateway assumes.
	IssuedAssumed bool       `json:"issued_assumed,omitempty"`
	Created       *time.Time `json:"created,omitempty"`
	// Expires is when the gateway stops accepting the cookie unless it
	// is reissued (valid), or when it stopped (expired).
	Expires *time.Time `json:"expires,omitempty"`
	// Limit is the setting that decides Expires.
	Limit string `json:"limit,omitempty"`
	// Session is the session as the upstream gets it in X-Session.
	Session json.RawMessage `json:"session,omitempty"`
	// Store and SessionID: with a server-side store, the cookie carries
	// only the session's ID.
	Store     string `json:"store,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	// Settings says where the secrets and settings came from.
	Settings string `json:"settings"`

	now time.Time
}

// inspect opens the session cookie in h at now.
func (s *inspectSetup) inspect(h http.Header, now time.Time) inspectReport {
	r := inspectReport{Settings: s.source, Store: s.store, now: now}
	name := s.config.CookieName
	m, err := sessioncore.NewManager(s.config, s.codec, sessioncore.WithClock(func() time.Time { return now }))
	if err != nil {
		r.Status, r.Summary = statusNotOpened, "the settings are invalid: "+err.Error()
		return r
	}
	main, parts := sessionCookies(h, name)
	if main == "" {
		r.Status, r.Summary = statusNoCookie, fmt.Sprintf("no cookie called %s in the input (set --cookie-name?)", name)
		return r
	}
	r.Parts, r.Bytes = 1, len(name)+1+len(main)
	value := main
	if count, rest, chunked := strings.Cut(main, "!"); chunked && len(count) <= 2 {
		if n, err := strconv.Atoi(count); err == nil && n >= 2 && n <= sessioncore.MaxCookiePartsLimit {
			r.Parts = n
			var b strings.Builder
			b.WriteString(rest)
			for k := 1; k < n; k++ {
				part, ok := parts[k]
				if !ok {
					r.Status = statusNoPart
					r.Summary = fmt.Sprintf("rejected: a part of a split cookie is missing: the cookie says it has %d parts, and %s.%d is not in the input (give every part as name=value, or the whole Cookie line with --cookie-header)", n, name, k)
					return r
				}
				b.WriteString(part)
				r.Bytes += len("; ") + len(name) + len(".") + len(strconv.Itoa(k)) + len("=") + len(part)
			}
			value = b.String()
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.Header = h
	session, outcome := m.Open(req)
	r.Outcome = outcome
	payload, keyIndex, decodeErr := s.codec.Decode(name, value)
	if decodeErr == nil && payload.Issued.IsZero() {
		// A format without an issue time: taken as the manager takes it,
		// as issued a lifetime before its expiry, but not after now.
		r.IssuedAssumed = true
		payload.Issued = now
		if start := payload.Expires.Add(-s.config.Lifetime); !payload.Expires.IsZero() && start.Before(now) {
			payload.Issued = start
		}
	}
	if decodeErr == nil {
		issued := payload.Issued.UTC()
		r.Issued = &issued
		if !payload.Created.IsZero() {
			created := payload.Created.UTC()
			r.Created = &created
		}
	}
	switch outcome {
	case sessioncore.OutcomeValid, sessioncore.OutcomeFallbackKey:
		r.Valid = true
		r.Key = &keyIndex
		r.Status, r.Summary = statusValid, "valid: opened with the current secret"
		if outcome == sessioncore.OutcomeFallbackKey {
			r.Status = statusFallback
			r.Summary = fmt.Sprintf("valid under fallback key %d: the gateway accepts it, and reissues it under the current secret when it next writes it", keyIndex)
		}
		r.Session = json.RawMessage(session.String())
		if decodeErr == nil {
			end, limit := s.expiry(payload)
			r.Expires, r.Limit = &end, limit
		}
	case sessioncore.OutcomeExpired, sessioncore.OutcomeRevoked:
		if decodeErr != nil {
			r.Status, r.Summary = string(outcome), string(outcome)
			break
		}
		r.Key = &keyIndex
		r.Session = s.contents(h, payload)
		switch end, limit := s.expiry(payload); {
		case outcome == sessioncore.OutcomeRevoked:
			r.Status = statusRevoked
			r.Summary = fmt.Sprintf("revoked: created %s, before revoke_before %s", r.createdOrIssued().Format(rfc3339Seconds), s.config.RevokeBefore.UTC().Format(rfc3339Seconds))
		case payload.Issued.After(now.Add(sessioncore.MaxClockSkew)):
			r.Status = statusFuture
			r.Summary = fmt.Sprintf("issued in the future: issued %s, %s ahead of this machine's clock (more than the %s allowed); a gateway's clock runs ahead, or the cookie was forged by a holder of the secret", r.Issued.Format(rfc3339Seconds), formatDuration(roughly(payload.Issued.Sub(now))), formatDuration(sessioncore.MaxClockSkew))
		default:
			r.Expires, r.Limit = &end, limit
			r.Status = statusExpired
			r.Summary = fmt.Sprintf("expired: issued %s, expired %s (%s)", r.Issued.Format(rfc3339Seconds), end.Format(rfc3339Seconds), limit)
		}
	case sessioncore.OutcomeBadSignature:
		r.Status, r.Summary = statusBadSig, "rejected: bad signature: no configured secret authenticates it (tampered with, made with another secret, codec or cookie name, or truncated)"
		if decodeErr != nil && decodeErr.Error() != sessioncore.ErrBadSignature.Error() {
			r.Summary += ": " + decodeErr.Error()
		}
	case sessioncore.OutcomeUndecodable:
		r.Status, r.Summary = statusUndecoded, "rejected: undecodable: a configured secret authenticates it, but its contents cannot be read (only a holder of the secret can make such a cookie)"
		if decodeErr != nil {
			r.Summary += ": " + decodeErr.Error()
		}
	case sessioncore.OutcomeTooLarge:
		r.Status = statusTooLarge
		r.Summary = fmt.Sprintf("rejected: too large: %d cookies of %d bytes in all; this config allows %d cookies (max_cookie_parts) and %d bytes (max_cookie_bytes), so the gateway deletes them", r.Parts, r.Bytes, orDefault(s.config.MaxCookieParts, sessioncore.DefaultMaxCookieParts), orDefault(s.config.MaxCookieBytes, sessioncore.DefaultMaxCookieBytes))
	default:
		r.Status, r.Summary = statusNotOpened, "not opened: "+string(outcome)
	}
	if r.Valid && s.store != "" {
		var ref struct {
			SID string `json:"sid"`
		}
		if json.Unmarshal(r.Session, &ref) == nil && ref.SID != "" {
			r.SessionID = ref.SID
		}
	}
	return r
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// createdOrIssued is the session's creation time, or its issue time when
// the codec keeps none (Flask's), as the manager counts it.
func (r *inspectReport) createdOrIssued() time.Time {
	if r.Created != nil {
		return *r.Created
	}
	if r.Issued != nil {
		return *r.Issued
	}
	return time.Time{}
}

// expiry returns when the gateway stops accepting a cookie of payload,
// unless it is reissued before, and which setting decides it.
func (s *inspectSetup) expiry(p sessioncore.Payload) (time.Time, string) {
	c := &s.config
	end, limit := p.Issued.Add(c.Lifetime), "lifetime "+formatDuration(c.Lifetime)
	if !p.Expires.IsZero() && !p.Expires.After(end) {
		end, limit = p.Expires, "the expiry the cookie carries"
	}
	if c.IdleTimeout > 0 {
		if t := p.Issued.Add(c.IdleTimeout); t.Before(end) {
			end, limit = t, "idle_timeout "+formatDuration(c.IdleTimeout)
		}
	}
	if c.AbsoluteLifetime > 0 {
		created := p.Created
		if created.IsZero() {
			created = p.Issued
		}
		if t := created.Add(c.AbsoluteLifetime); t.Before(end) {
			end, limit = t, "absolute_lifetime "+formatDuration(c.AbsoluteLifetime)
		}
	}
	return end.UTC(), limit
}

// contents returns the session an authentic cookie carries, as the
// upstream would have got it, whatever its age: it is opened at the
// instant it was issued, without the limits that voided it.
func (s *inspectSetup) contents(h http.Header, p sessioncore.Payload) json.RawMessage {
	cfg := s.config
	cfg.IdleTimeout, cfg.AbsoluteLifetime, cfg.RefreshInterval = 0, 0, 0
	cfg.RevokeBefore = time.Time{}
	m, err := sessioncore.NewManager(cfg, s.codec, sessioncore.WithClock(func() time.Time { return p.Issued }))
	if err != nil {
		return nil
	}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.Header = h
	session, outcome := m.Open(req)
	if outcome != sessioncore.OutcomeValid && outcome != sessioncore.OutcomeFallbackKey {
		return nil
	}
	return json.RawMessage(session.String())
}

// sessionCookies returns the value of the session cookie called name in
// h's Cookie lines and those of its parts (<name>.1, ...), the first of
// each, as the manager reads them: blanks around names and values and
// quotes around values dropped. The manager decides what they open; these
// only say what the report shows.
func sessionCookies(h http.Header, name string) (main string, parts map[int]string) {
	parts = map[int]string{}
	mainSeen := false
	for _, line := range h.Values("Cookie") {
		for field := range strings.SplitSeq(line, ";") {
			n, v, ok := strings.Cut(field, "=")
			if !ok {
				continue
			}
			n = sessioncore.TrimCookieName(n)
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			switch {
			case n == name && !mainSeen:
				main, mainSeen = v, true
			case sessioncore.IsCookiePart(n, name):
				k, _ := strconv.Atoi(n[len(name)+1:])
				if _, dup := parts[k]; !dup {
					parts[k] = v
				}
			}
		}
	}
	return main, parts
}

// write prints the report for a person.
func (r *inspectReport) write(w io.Writer) error {
	var b strings.Builder
	b.WriteString(r.Summary + "\n")
	row := func(label, text string) { fmt.Fprintf(&b, "  %-9s %s\n", label+":", text) }
	if r.Parts > 0 {
		text := fmt.Sprintf("%d bytes of the Cookie line", r.Bytes)
		if r.Parts > 1 {
			text = fmt.Sprintf("split over %d cookies, %s", r.Parts, text)
		}
		row("cookie", text)
	}
	if r.Key != nil && r.Status != statusValid && r.Status != statusFallback {
		if *r.Key == 0 {
			row("key", "the current secret")
		} else {
			row("key", fmt.Sprintf("fallback secret %d", *r.Key))
		}
	}
	if r.Issued != nil && r.Status != statusBadSig && r.Status != statusUndecoded {
		if r.IssuedAssumed {
			row("issued", r.when(*r.Issued)+", assumed: the cookie's format carries no issue time")
		} else {
			row("issued", r.when(*r.Issued))
		}
		if r.Created != nil {
			row("created", r.when(*r.Created))
		}
		if r.Expires != nil {
			if r.Valid {
				row("expires", r.when(*r.Expires)+", unless reissued before ("+r.Limit+")")
			} else {
				row("expired", r.when(*r.Expires)+" ("+r.Limit+")")
			}
		}
	}
	if r.Store != "" {
		row("store", r.Store+": the cookie carries the session's ID; the session itself is in the store")
	}
	if r.SessionID != "" {
		row("id", r.SessionID+"  (caddy session revoke "+r.SessionID+")")
	}
	row("settings", r.Settings)
	if len(r.Session) > 0 {
		var pretty bytes.Buffer
		if json.Indent(&pretty, r.Session, "  ", "  ") == nil {
			fmt.Fprintf(&b, "  session:\n  %s\n", pretty.String())
		} else {
			fmt.Fprintf(&b, "  session:  %s\n", r.Session)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// when formats t with its distance from the report's now.
func (r *inspectReport) when(t time.Time) string {
	d := r.now.Sub(t)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%s (%s ago)", t.Format(rfc3339Seconds), formatDuration(roughly(d)))
	case d <= -time.Second:
		return fmt.Sprintf("%s (in %s)", t.Format(rfc3339Seconds), formatDuration(roughly(-d)))
	}
	return t.Format(rfc3339Seconds) + " (now)"
}

// roughly rounds a distance in time for a person: to the hour beyond a
// day, to the minute beyond an hour, to the second below.
func roughly(d time.Duration) time.Duration {
	switch {
	case d >= 24*time.Hour:
		return d.Round(time.Hour)
	case d >= time.Hour:
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}

// formatDuration writes a duration as a Caddyfile would: whole days as
// days (31d), no zero minutes or seconds at the end (30m, 2h, 1d12h).
func formatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	var b strings.Builder
	if d >= day {
		fmt.Fprintf(&b, "%dd", d/day)
		if d %= day; d == 0 {
			return b.String()
		}
	}
	text := d.String()
	if strings.HasSuffix(text, "m0s") {
		text = strings.TrimSuffix(text, "0s")
	}
	if strings.HasSuffix(text, "h0m") {
		text = strings.TrimSuffix(text, "0m")
	}
	return b.String() + text
}
