package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"

	"github.com/sessiongate/caddy-session/sessioncore"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the session gateway. For each request it opens the session
// from the signed and encrypted cookie, passes it to the next handler in a
// request header (and as {http.session.*} placeholders), takes the
// upstream's changes from the response headers and reissues, refreshes or
// deletes the cookie by the rules of Flask's SessionInterface.
type Handler struct {
	// The secret the cookie is signed and encrypted with: at least 32
	// bytes. Placeholders are resolved when the config is loaded, so
	// {env.SESSION_SECRET} or {file./run/secrets/session} keep the secret
	// out of the JSON config. Required.
	Secret string `json:"secret,omitempty"`

	// A file that holds the secret (instead of Secret), read when the
	// config loads, so a caddy reload picks up a new one. Surrounding
	// white space is ignored.
	SecretFile string `json:"secret_file,omitempty"`

	// A file of fallback secrets, one per line (blank lines and lines
	// starting with # are ignored), read when the config loads, added to
	// SecretFallbacks.
	SecretFallbacksFile string `json:"secret_fallbacks_file,omitempty"`

	// Older secrets that are still accepted when reading a cookie, never
	// used to write one. A cookie opened with one of them is reissued under
	// Secret whenever it is written. Placeholders are resolved as for Secret.
	SecretFallbacks []string `json:"secret_fallbacks,omitempty"`

	// The cookie's name. Default: "session".
	CookieName string `json:"cookie_name,omitempty"`

	// The cookie's Domain attribute. Default: none (a host-only cookie).
	CookieDomain string `json:"cookie_domain,omitempty"`

	// The cookie's Path attribute. Default: "/".
	CookiePath string `json:"cookie_path,omitempty"`

	// Whether the cookie is HttpOnly. Default: true.
	CookieHTTPOnly *bool `json:"cookie_httponly,omitempty"`

	// Whether the cookie is Secure. Default: false.
	CookieSecure bool `json:"cookie_secure,omitempty"`

	// The cookie's SameSite attribute: "lax", "strict" or "none".
	// Default: none set.
	CookieSameSite string `json:"cookie_samesite,omitempty"`

	// Whether the cookie is Partitioned (CHIPS); implies Secure.
	// Default: false.
	CookiePartitioned bool `json:"cookie_partitioned,omitempty"`

	// How long a session lives after its cookie was last issued, and how
	// long a permanent session's cookie is kept by the browser (Flask's
	// PERMANENT_SESSION_LIFETIME). Default: 31 days.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`

	// Whether a permanent session's cookie is reissued on every response,
	// sliding its expiry (Flask's SESSION_REFRESH_EACH_REQUEST).
	// Default: true.
	RefreshEachRequest *bool `json:"refresh_each_request,omitempty"`

	// Voids a session unused for this long, judged by a signed timestamp
	// (not the cookie's Max-Age); sessions in use are reissued to move it.
	// Default: off.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// Voids a session this long after it was created, whatever refreshes
	// happened. Default: off.
	AbsoluteLifetime caddy.Duration `json:"absolute_lifetime,omitempty"`

	// Throttles reissues that only move the expiry (permanent refreshes,
	// idle-timeout refreshes): a cookie issued less than this long ago is
	// not reissued, as Apache's SessionExpiryUpdateInterval. Default: 0,
	// reissue on every response.
	RefreshInterval caddy.Duration `json:"refresh_interval,omitempty"`

	// Every session created before this instant (RFC 3339) opens as a new
	// one: the "log everyone out" switch, without changing keys.
	RevokeBefore string `json:"revoke_before,omitempty"`

	// How many cookies a session too large for one may be split over (the
	// first keeps cookie_name, the others are <name>.1, <name>.2, ...).
	// Default: 4; 1 turns splitting off. Always 1 with the flask codec.
	MaxCookieParts int `json:"max_cookie_parts,omitempty"`

	// The budget, in bytes, for the session's cookies as a browser sends
	// them back ("name=value" of each part, joined by "; "): a session
	// over it is refused with 502 rather than issued, and a request over
	// it opens a new session and deletes its cookies. It must leave room
	// in the server's max_header_size for the rest of a request's headers.
	// Default: 4096.
	MaxCookieBytes int `json:"max_cookie_bytes,omitempty"`

	// The prefix of the protocol's headers. Default: "X-Session".
	HeaderPrefix string `json:"header_prefix,omitempty"`

	// The cookie format: "securecookie" (default; signed and encrypted
	// with keys derived from Secret) or "flask" (Flask's own signed
	// session cookie, shared with a Flask app whose SECRET_KEY is Secret).
	Codec string `json:"codec,omitempty"`

	// Whether the session cookie is passed on to the upstream in the
	// request's Cookie header. Default: true with the flask codec (the
	// Flask app reads it), false otherwise.
	ForwardCookie *bool `json:"forward_cookie,omitempty"`

	// Where sessions live. Default: in the cookie.
	Store *StoreConfig `json:"store,omitempty"`

	// Session values sent to the upstream in headers of the user's
	// choosing, such as the user ID in X-Remote-User. Every client-sent
	// spelling of each header (any case, '_' or '.' for '-') is removed
	// first, always, also when the session lacks the key.
	Forward []ForwardHeader `json:"forward,omitempty"`

	// The session key whose value names the user; it also fills
	// {http.auth.user.id}, so access logs carry the user.
	UserKey string `json:"user_key,omitempty"`

	// Rejects unsafe cross-origin requests (POST, PUT, PATCH, DELETE) with
	// 403, judged by Sec-Fetch-Site and Origin (Go's
	// net/http.CrossOriginProtection).
	CSRFProtection *CSRFProtection `json:"csrf_protection,omitempty"`

	// What a request gets when the store cannot be read: "fail_closed"
	// (default) answers 503; "fail_open" passes it on with an empty session
	// that refuses changes, and X-Session-Status: unavailable.
	OnStoreError string `json:"on_store_error,omitempty"`

	sessions      *sessioncore.Manager
	protocol      *sessioncore.HeaderProtocol
	forwardCookie bool
	failOpen      bool
	storeKey      string    // in the stores pool, released on Cleanup
	storeUse      *storeUse // counts this handler's requests while they use the store
	crossOrigin   *http.CrossOriginProtection
	logger        *zap.Logger
}

// ForwardHeader sends one session value to the upstream in a header.
type ForwardHeader struct {
	// The session key.
	Key string `json:"key"`
	// The request header that carries its value: a string as itself,
	// anything else as JSON.
	Header string `json:"header"`
}

// CSRFProtection configures the cross-site request protection.
type CSRFProtection struct {
	// Origins (scheme://host[:port]) whose cross-origin requests are
	// allowed anyway.
	TrustedOrigins []string `json:"trusted_origins,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision resolves the secrets and sets up the session interface.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("session metrics: %w", err)
	}
	repl := caddy.NewReplacer()

	secret, fromPlaceholder, err := resolveSecret(repl, h.Secret)
	if err != nil {
		return fmt.Errorf("session secret: %w", err)
	}
	literal := !fromPlaceholder && h.Secret != ""
	if h.SecretFile != "" {
		if h.Secret != "" {
			return errors.New("session: set secret or secret_file, not both")
		}
		path, _, err := resolveSecret(repl, h.SecretFile)
		if err != nil {
			return fmt.Errorf("session secret_file: %w", err)
		}
		if secret, err = readSecretFile(path); err != nil {
			return err
		}
	}
	if secret == "" {
		return errors.New("session secret is required")
	}
	var fallbacks [][]byte
	for i, raw := range h.SecretFallbacks {
		fb, fromPlaceholder, err := resolveSecret(repl, raw)
		if err != nil {
			return fmt.Errorf("session fallback secret %d: %w", i+1, err)
		}
		literal = literal || !fromPlaceholder
		fallbacks = append(fallbacks, []byte(fb))
	}
	if h.SecretFallbacksFile != "" {
		path, _, err := resolveSecret(repl, h.SecretFallbacksFile)
		if err != nil {
			return fmt.Errorf("session secret_fallbacks_file: %w", err)
		}
		fromFile, err := readFallbacksFile(path)
		if err != nil {
			return err
		}
		fallbacks = append(fallbacks, fromFile...)
	}
	if literal {
		h.logger.Warn("a session secret is written in the config itself, where the admin API and autosave.json show it; use {env.*} or {file.*}")
	}
	codec, err := h.newCodec([]byte(secret), fallbacks)
	if err != nil {
		return fmt.Errorf("session keys: %w", err)
	}

	cfg := sessioncore.DefaultConfig()
	if h.CookieName != "" {
		cfg.CookieName = h.CookieName
	}
	if h.CookiePath != "" {
		cfg.CookiePath = h.CookiePath
	}
	if h.CookieHTTPOnly != nil {
		cfg.CookieHTTPOnly = *h.CookieHTTPOnly
	}
	if h.Lifetime != 0 {
		cfg.Lifetime = time.Duration(h.Lifetime)
	}
	if h.RefreshEachRequest != nil {
		cfg.RefreshEachRequest = *h.RefreshEachRequest
	}
	cfg.MaxCookieParts = h.MaxCookieParts
	cfg.MaxCookieBytes = h.MaxCookieBytes
	if err := h.checkCookieBudget(ctx); err != nil {
		return err
	}
	if h.Codec == codecFlask {
		cfg.MaxCookieParts = 1 // a Flask app would not join the parts
	}
	cfg.IdleTimeout = time.Duration(h.IdleTimeout)
	cfg.AbsoluteLifetime = time.Duration(h.AbsoluteLifetime)
	cfg.RefreshInterval = time.Duration(h.RefreshInterval)
	if h.RevokeBefore != "" {
		if cfg.RevokeBefore, err = time.Parse(time.RFC3339, h.RevokeBefore); err != nil {
			return fmt.Errorf("revoke_before must be an RFC 3339 time such as 2026-11-25T20:00:00Z: %w", err)
		}
		if cfg.RevokeBefore.After(time.Now().Add(sessioncore.MaxClockSkew)) {
			// Every login until then would be void at its next request.
			return fmt.Errorf("revoke_before %s is in the future", h.RevokeBefore)
		}
	}
	if cfg.AbsoluteLifetime > 0 && h.Codec == codecFlask {
		return errors.New("absolute_lifetime needs the creation time, which Flask's cookie does not carry; it cannot be used with the flask codec")
	}
	cfg.CookieDomain = h.CookieDomain
	cfg.CookieSecure = h.CookieSecure
	cfg.CookieSameSite = h.CookieSameSite
	cfg.CookiePartitioned = h.CookiePartitioned
	if strings.EqualFold(cfg.CookieSameSite, "none") && !cfg.CookieSecure && !cfg.CookiePartitioned {
		h.logger.Warn("browsers reject SameSite=None cookies that are not Secure; set cookie_secure true")
	}

	opts := []sessioncore.Option{sessioncore.WithLogger(h.logger)}
	switch h.OnStoreError {
	case "", "fail_closed":
	case "fail_open":
		h.failOpen = true
	default:
		return fmt.Errorf("on_store_error must be fail_open or fail_closed, not %q", h.OnStoreError)
	}
	store, storeKey, err := openStore(h.Store, cfg.CookieName)
	if err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	h.storeKey, h.storeUse = storeKey, store.use
	if store.Store != nil {
		if h.Codec == codecFlask {
			return errors.New("the flask codec keeps the session in the cookie, as Flask does; it cannot be used with a server-side store")
		}
		opts = append(opts, sessioncore.WithStore(store.Store))
		cfg.MaxSessionSize = h.Store.MaxSessionSize
	}
	h.sessions, err = sessioncore.NewManager(cfg, codec, opts...)
	if err != nil {
		return fmt.Errorf("session cookie: %w", err)
	}
	for _, f := range h.Forward {
		if f.Key == "" || !httpguts.ValidHeaderFieldName(f.Header) {
			return fmt.Errorf("forward: want a session key and a valid header name, not %q %q", f.Key, f.Header)
		}
	}
	if h.CSRFProtection != nil {
		h.crossOrigin = http.NewCrossOriginProtection()
		for _, origin := range h.CSRFProtection.TrustedOrigins {
			if err := h.crossOrigin.AddTrustedOrigin(origin); err != nil {
				return fmt.Errorf("csrf_protection: %w", err)
			}
		}
	}
	prefix := h.HeaderPrefix
	if prefix == "" {
		prefix = sessioncore.DefaultHeaderPrefix
	}
	h.protocol, err = sessioncore.NewHeaderProtocol(prefix)
	return err
}

// Names of the codecs.
const (
	codecSecureCookie = "securecookie"
	codecFlask        = "flask"
)

// newCodec makes the configured codec.
func (h *Handler) newCodec(secret []byte, fallbacks [][]byte) (sessioncore.Codec, error) {
	switch h.Codec {
	case "", codecSecureCookie:
		h.forwardCookie = h.ForwardCookie != nil && *h.ForwardCookie
		return sessioncore.NewSecureCookieCodec(secret, fallbacks...)
	case codecFlask:
		h.forwardCookie = h.ForwardCookie == nil || *h.ForwardCookie
		for i, s := range append([][]byte{secret}, fallbacks...) {
			if len(s) > 0 && len(s) < sessioncore.MinSecretLength {
				h.logger.Warn("a short Flask secret can be brute-forced offline from a single cookie (hashcat mode 29100); use 32 random bytes or more",
					zap.Int("secret", i), zap.Int("bytes", len(s)))
			}
		}
		return sessioncore.NewFlaskCodec(secret, fallbacks...)
	}
	return nil, fmt.Errorf("unknown codec %q; want securecookie or flask", h.Codec)
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// First of all, nothing a client sent may speak for the gateway, not
	// even to an error route.
	h.protectRequest(r)
	if h.storeUse != nil {
		// A reload must not close the store under this request.
		h.storeUse.acquire()
		defer h.storeUse.release()
	}
	if h.crossOrigin != nil {
		if err := h.crossOrigin.Check(r); err != nil {
			return caddyhttp.Error(http.StatusForbidden, err)
		}
	}
	session, outcome := h.sessions.Open(r)
	metrics.opened.inc(string(outcome))
	if c := h.logger.Check(zapcore.DebugLevel, "session opened"); c != nil {
		c.Write(zap.String("outcome", string(outcome)), zap.Int("keys", session.Len()))
	}

	storeDown := errors.Is(session.Unavailable(), sessioncore.ErrStore)
	if storeDown && !h.failOpen {
		return caddyhttp.Error(http.StatusServiceUnavailable, session.Unavailable())
	}
	if storeDown {
		// The page depends on the cookie all the same: a shared cache
		// must not hand this anonymous answer to users with sessions.
		sessioncore.AddVaryCookie(w.Header())
	}

	// The upstream is handed the whole session, so it counts as accessed:
	// every response through here varies by Cookie.
	session.MarkAccessed()
	h.protocol.SetSessionHeader(r.Header, session) // protectRequest stripped the rest
	if session.IsNull() {
		r.Header.Set(h.protocol.StatusHeader(), sessioncore.StatusUnavailable)
	}
	if id := session.ID(); id != "" {
		r.Header.Set(h.protocol.IDHeader(), id)
	}
	h.forwardIdentity(r, session)
	// A cookie the gateway did not accept (forged, expired, revoked) never
	// reaches an upstream that reads it itself, as a Flask app does.
	if accepted := outcome == sessioncore.OutcomeValid || outcome == sessioncore.OutcomeFallbackKey; h.forwardCookie && accepted {
		h.forwardSessionCookie(r, h.sessions.RequestCookie(r.Header))
	} else {
		h.removeSessionCookies(r)
	}
	ex := &exchange{h: h, ctx: r.Context(), session: session}
	ex.snapshotHeader(w.Header())
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	publishSession(r, repl, &ex.published, session)
	if h.UserKey != "" {
		if user, ok := session.Text(h.UserKey); ok {
			repl.Set("http.auth.user.id", sessioncore.HeaderSafe(user))
		}
	}

	ex.ResponseWriter = w
	ex.f = ex
	rw := &ex.responseWriter
	err := next.ServeHTTP(rw, r)
	if err == nil && !rw.wroteHeader && !rw.hijacked {
		// The chain wrote nothing; net/http would send an implicit 200
		// without the session, so finish it here.
		rw.WriteHeader(http.StatusOK)
	}
	switch {
	case rw.rejected != nil:
		// Whatever the upstream added since, trailers included, must not
		// become headers of the error response.
		ex.restoreHeader(w.Header())
		return rw.rejected
	case err != nil:
		h.protocol.Strip(w.Header())
		return err
	}
	// Trailers are written after this returns, from the same header map.
	ex.stripTrailers(w.Header())
	return nil
}

// Cleanup releases the handler's share of its session store.
func (h *Handler) Cleanup() error {
	if h.storeKey == "" {
		return nil
	}
	_, err := stores.Delete(h.storeKey)
	h.storeKey = ""
	return err
}

// Interface guards
var (
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
