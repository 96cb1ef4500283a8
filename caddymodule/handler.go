package caddymodule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

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

	// Options of the codec's own, name to value, for the codecs that take
	// any (in the Caddyfile, a block after the codec's name: codec rails {
	// key_digest sha256 }). A codec refuses names it does not know, and
	// one that takes no options refuses any.
	CodecOptions map[string]string `json:"codec_options,omitempty"`

	// Whether the session cookie is passed on to the upstream in the
	// request's Cookie header. Default: true with the flask codec (the
	// Flask app reads it), false otherwise.
	ForwardCookie *bool `json:"forward_cookie,omitempty"`

	// Legacy cookie formats whose sessions are carried over to this
	// handler's format, so that moving an app to another format logs
	// nobody out (see MigrateFrom). At most 8.
	MigrateFrom []MigrateFrom `json:"migrate_from,omitempty"`

	// The per-user revocation map: with user_key, an upstream's
	// X-Session-Revoke (others, all) and the admin API void every session
	// of a user created before the revocation, cookie sessions included.
	// Default: none (X-Session-Revoke is refused).
	RevocationStore *RevocationStoreConfig `json:"revocation_store,omitempty"`

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

	// With user_key and a memory or Redis store: hand the upstream the list
	// of the user's sessions (each one's ID hash, times, device, and whether
	// it is the current one) in X-Session-List, for a "where am I logged
	// in" page. It costs a store read per request of the routes it covers.
	ExposeSessions bool `json:"expose_sessions,omitempty"`

	// Keep each session's client address in the store's user index.
	// Default: false; only a device label is kept.
	RecordClientIP bool `json:"record_client_ip,omitempty"`

	// Rejects unsafe cross-origin requests (POST, PUT, PATCH, DELETE) with
	// 403, judged by Sec-Fetch-Site and Origin (Go's
	// net/http.CrossOriginProtection).
	CSRFProtection *CSRFProtection `json:"csrf_protection,omitempty"`

	// What a request gets when the store cannot be read: "fail_closed"
	// (default) answers 503; "fail_open" passes it on with an empty session
	// that refuses changes, and X-Session-Status: unavailable.
	OnStoreError string `json:"on_store_error,omitempty"`

	// Signs the session for the upstream (see SignUpstream). Default: off.
	SignUpstream *SignUpstream `json:"sign_upstream,omitempty"`

	// Logs users in at the edge (see Login). Default: off.
	Login *Login `json:"login,omitempty"`

	// The top-level session keys this route's upstream is sent in
	// X-Session and the assertion (Send), or all but these (Hide). The
	// matcher, placeholders and forward still see the whole session.
	Send []string `json:"send,omitempty"`
	Hide []string `json:"hide,omitempty"`

	// The top-level keys this route's upstream may set, change or remove
	// (Writable), or all but these (Readonly). A mutation that breaks the
	// rules is refused with 502; X-Session-Replace keeps the protected keys.
	Writable []string `json:"writable,omitempty"`
	Readonly []string `json:"readonly,omitempty"`

	sessions           *sessioncore.Manager
	gateway            *sessioncore.Gateway
	releaseStore       func() // releases the handler's share of its store, on Cleanup
	releaseRevocations func() // and of its revocation map
	migrations         []sessioncore.Migration
	storeUse           *storeUse // counts this handler's requests while they use the store
	logger             *zap.Logger
	asserter           *sessioncore.Asserter // with sign_upstream
	oidc               *oidcLogin            // with login oidc
	store              sessioncore.Store     // nil for the cookie store
	jwksPath           string                // where the site serves its keys
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

// Provision sets the handler up, in steps: the keys and the codec, the
// session's configuration, the store, the session manager, and the
// gateway that runs each request through them.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("session metrics: %w", err)
	}
	codec, err := h.provisionCodec()
	if err != nil {
		return err
	}
	cfg, err := h.managerConfig()
	if err != nil {
		return err
	}
	if err := h.checkCookieBudget(ctx); err != nil {
		return err
	}
	opts := []sessioncore.Option{sessioncore.WithLogger(h.logger)}
	if h.UserKey != "" {
		opts = append(opts, sessioncore.WithUserKey(h.UserKey)) // files store sessions under their user
	}
	store, releaseStore, err := openStore(h.Store, cfg.CookieName)
	if err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	h.releaseStore, h.storeUse = releaseStore, store.use
	if store.Store != nil {
		opts = append(opts, sessioncore.WithStore(store.Store))
		cfg.MaxSessionSize = h.Store.MaxSessionSize
	}
	revocations, releaseRevocations, err := openRevocations(h.RevocationStore, cfg.CookieName)
	if err != nil {
		return err
	}
	h.releaseRevocations = releaseRevocations
	if revocations != nil {
		if h.UserKey == "" {
			return errors.New("revocation_store needs user_key: the session key that names the user")
		}
		opts = append(opts, sessioncore.WithRevocations(revocations, h.UserKey, cmp.Or(time.Duration(h.RevocationStore.Staleness), defaultRevocationStaleness)))
	}
	if h.sessions, err = sessioncore.NewManager(cfg, codec, opts...); err != nil {
		return fmt.Errorf("session cookie: %w", err)
	}
	if h.migrations, err = h.legacyFormats(cfg); err != nil {
		return err
	}
	if h.Login != nil && h.Login.OIDC != nil {
		secret, _, _, err := h.secrets()
		if err != nil {
			return err
		}
		if err := h.provisionOIDC(ctx, secret, cfg, store.Store); err != nil {
			return err
		}
	}
	h.store = store.Store
	h.gateway, err = h.newGateway()
	return err
}

// provisionCodec reads the secrets and makes the configured codec.
func (h *Handler) provisionCodec() (sessioncore.Codec, error) {
	secret, fallbacks, literal, err := h.secrets()
	if err != nil {
		return nil, err
	}
	if literal {
		h.logger.Warn("a session secret is written in the config itself, where the admin API and autosave.json show it; use {env.*} or {file.*}")
	}
	info, err := h.codecInfo()
	if err != nil {
		return nil, err
	}
	if info.AnySecretLength {
		for i, s := range append([][]byte{secret}, fallbacks...) {
			if len(s) > 0 && len(s) < sessioncore.MinSecretLength {
				h.logger.Warn("a short secret can be brute-forced offline from a single cookie (for Flask's, hashcat mode 29100); use 32 random bytes or more",
					zap.Int("secret", i), zap.Int("bytes", len(s)))
			}
		}
	}
	codec, err := info.Make(h.CodecOptions, secret, fallbacks...)
	if err != nil {
		return nil, fmt.Errorf("session codec %s: %w", info.Name, err)
	}
	return codec, nil
}

// codecInfo returns the configured codec's description.
func (h *Handler) codecInfo() (sessioncore.CodecInfo, error) {
	name := cmp.Or(h.Codec, sessioncore.SecureCookieCodecName)
	info, ok := sessioncore.LookupCodec(name)
	if !ok {
		return info, fmt.Errorf("unknown codec %q; want one of %s", name, strings.Join(sessioncore.CodecNames(), ", "))
	}
	return info, nil
}

// managerConfig turns the handler's fields into the session manager's
// configuration, which checks itself when the manager is made.
func (h *Handler) managerConfig() (sessioncore.Config, error) {
	cfg := sessioncore.DefaultConfig()
	info, err := h.codecInfo()
	if err != nil {
		return cfg, err
	}
	cfg.CookieName = cmp.Or(h.CookieName, info.DefaultCookieName, cfg.CookieName)
	cfg.CookiePath = cmp.Or(h.CookiePath, cfg.CookiePath)
	cfg.CookieDomain = h.CookieDomain
	cfg.CookieSecure = h.CookieSecure
	cfg.CookieSameSite = h.CookieSameSite
	cfg.CookiePartitioned = h.CookiePartitioned
	if h.CookieHTTPOnly != nil {
		cfg.CookieHTTPOnly = *h.CookieHTTPOnly
	}
	cfg.Lifetime = cmp.Or(time.Duration(h.Lifetime), cfg.Lifetime)
	if h.RefreshEachRequest != nil {
		cfg.RefreshEachRequest = *h.RefreshEachRequest
	}
	cfg.IdleTimeout = time.Duration(h.IdleTimeout)
	cfg.AbsoluteLifetime = time.Duration(h.AbsoluteLifetime)
	cfg.RefreshInterval = time.Duration(h.RefreshInterval)
	cfg.MaxCookieParts = h.MaxCookieParts
	cfg.MaxCookieBytes = h.MaxCookieBytes
	if info.SharedWithApp {
		cfg.MaxCookieParts = 1 // the app would not join the parts
	}
	if cfg.RevokeBefore, err = sessioncore.ParseRevokeBefore(h.RevokeBefore); err != nil {
		return cfg, fmt.Errorf("revoke_before %w", err)
	}
	if cfg.CookieSameSite == sessioncore.SameSiteNone || strings.EqualFold(cfg.CookieSameSite, "none") {
		if !cfg.CookieSecure && !cfg.CookiePartitioned {
			h.logger.Warn("browsers reject SameSite=None cookies that are not Secure; set cookie_secure true")
		}
	}
	return cfg, nil
}

// newGateway makes the gateway that runs each request through the
// session manager.
func (h *Handler) newGateway() (*sessioncore.Gateway, error) {
	info, err := h.codecInfo()
	if err != nil {
		return nil, err
	}
	c := sessioncore.GatewayConfig{
		HeaderPrefix:   h.HeaderPrefix,
		ForwardCookie:  info.SharedWithApp,
		FailOpen:       h.OnStoreError == onStoreErrorFailOpen,
		OnWithheld:     metrics.withheld.inc,
		Migrations:     h.migrations,
		OnRevoke:       func(kind string) { metrics.revocations.inc(kind + "/app") },
		Logger:         h.logger,
		ExposeSessions: h.ExposeSessions,
		RecordClientIP: h.RecordClientIP,
	}
	if h.ForwardCookie != nil {
		c.ForwardCookie = *h.ForwardCookie
	}
	c.View, c.WriteRules = h.viewAndRules()
	if h.SignUpstream != nil {
		if c.Assertion, c.AssertionHeader, err = h.provisionAssertion(); err != nil {
			return nil, err
		}
	}
	for _, f := range h.Forward {
		c.Forward = append(c.Forward, sessioncore.ForwardHeader{Key: f.Key, Header: f.Header})
	}
	if h.oidc != nil && h.oidc.store != nil {
		c.OnOpen = h.oidc.onOpen // refreshes and forwards the login's tokens
		if h.oidc.forwardHeader != "" {
			c.OwnHeaders = []string{h.oidc.forwardHeader}
		}
	}
	if h.CSRFProtection != nil {
		c.CrossOrigin = http.NewCrossOriginProtection()
		for _, origin := range h.CSRFProtection.TrustedOrigins {
			if err := c.CrossOrigin.AddTrustedOrigin(origin); err != nil {
				return nil, fmt.Errorf("csrf_protection: %w", err)
			}
		}
	}
	return sessioncore.NewGateway(h.sessions, c)
}

// The values of on_store_error.
const (
	onStoreErrorFailOpen   = "fail_open"
	onStoreErrorFailClosed = "fail_closed"
)

// Validate implements caddy.Validator: the rules that join several
// settings. Each setting's own rules are checked where it is parsed.
func (h *Handler) Validate() error {
	info, err := h.codecInfo()
	if err != nil {
		return err
	}
	switch {
	case h.Secret != "" && h.SecretFile != "":
		return errors.New("session: set secret or secret_file, not both")
	case h.OnStoreError != "" && h.OnStoreError != onStoreErrorFailOpen && h.OnStoreError != onStoreErrorFailClosed:
		return fmt.Errorf("on_store_error must be fail_open or fail_closed, not %q", h.OnStoreError)
	case h.AbsoluteLifetime > 0 && !info.KeepsCreationTime:
		return fmt.Errorf("absolute_lifetime needs the creation time, which the %s codec's cookie does not carry", info.Name)
	case h.Store != nil && h.Store.Type != "" && h.Store.Type != storeCookie && info.SharedWithApp:
		return fmt.Errorf("the %s codec keeps the session in the cookie, as the app does; it cannot be used with a server-side store", info.Name)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.storeUse != nil {
		// A reload must not close the store under this request.
		h.storeUse.acquire()
		defer h.storeUse.release()
	}
	if h.jwksPath != "" && r.URL.Path == h.jwksPath {
		return h.serveJWKS(w, r)
	}
	loginRoute := ""
	if h.oidc != nil {
		switch loginRoute = h.oidc.route(r); loginRoute {
		case "login":
			return h.oidc.serveLogin(w, r) // before the session: a login does not touch it
		case "backchannel":
			return h.oidc.serveBackChannelLogout(w, r, h.endProviderSession)
		}
	}
	arrival := h.gateway.Arrive(r, w.Header())
	if arrival.Outcome != "" {
		metrics.opened.inc(string(arrival.Outcome))
	}
	if arrival.Refused != nil {
		return caddyhttp.Error(arrival.Status, arrival.Refused)
	}
	session := arrival.Session
	ex := &exchange{h: h, ctx: r.Context(), session: session}
	ex.snapshotHeader(w.Header())
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	publishSession(r, repl, &ex.published, session)
	if h.UserKey != "" {
		if user, ok := session.Text(h.UserKey); ok {
			repl.Set("http.auth.user.id", sessioncore.HeaderSafe(user))
		}
	}

	switch loginRoute {
	case "callback":
		next = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return h.oidc.serveCallback(session, w, r) })
	case "logout":
		next = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return h.oidc.serveLogout(session, w, r) })
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
		h.gateway.StripResponse(w.Header())
		return err
	}
	// Trailers are written after this returns, from the same header map.
	ex.stripTrailers(w.Header())
	return nil
}

// endProviderSession ends the sessions a back-channel logout names. With
// a sid and a store that keeps the login's tokens, only the sessions of
// that provider session end (a sid alone names its user through the link
// the login left); otherwise every session of the user does, through the
// revocation map and the store's user index.
func (h *Handler) endProviderSession(ctx context.Context, user, sid string) error {
	if user == "" {
		var err error
		if user, err = h.oidc.sidUser(ctx, sid); err != nil || user == "" {
			if err == nil {
				h.oidc.logger.Info("back-channel logout names a sid this gateway has no link for (expired, evicted, or never logged in here); nothing ended")
			}
			return err
		}
	}
	index, indexed := h.store.(sessioncore.UserIndex)
	var errs []error
	if h.RevocationStore != nil && (sid == "" || !indexed) {
		errs = append(errs, h.sessions.RevokeUser(ctx, user, sessioncore.EndOfSecond(time.Now())))
	}
	if !indexed {
		return errors.Join(errs...)
	}
	infos, err := index.Sessions(ctx, user)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, info := range infos {
		if sid != "" {
			values, found, err := sessioncore.LoadFresh(ctx, h.store, info.ID)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			// Sessions of another provider session stay; those that keep
			// no sid (logged in before the gateway kept tokens, or with a
			// provider that sends none) cannot be told apart, and end.
			t := parseTokens(values[sessioncore.PrivatePrefix+oidcPrivate])
			if !found || t != nil && t.SID != "" && t.SID != sid {
				continue
			}
		}
		if _, err := h.store.Delete(ctx, info.ID); err != nil {
			errs = append(errs, err)
		}
	}
	if sid != "" && len(errs) == 0 {
		// The provider session is over: its link goes too.
		if _, err := h.store.Delete(ctx, h.oidc.sidLinkID(sid)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Cleanup releases the handler's share of its session store.
func (h *Handler) Cleanup() error {
	publishedKeys.remove(h)
	if h.releaseStore != nil {
		h.releaseStore()
	}
	if h.releaseRevocations != nil {
		h.releaseRevocations()
	}
	return nil
}

// Interface guards
var (
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
