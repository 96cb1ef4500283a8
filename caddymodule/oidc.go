package caddymodule

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/securecookie"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/sessiongate/caddy-session/sessioncore"
)

func init() {
	subdirectives["login"] = parseLogin
}

// Login logs users in at the edge: the session starts with the identity a
// provider vouches for, and upstreams still read and write it through the
// header protocol.
type Login struct {
	// Login against an OpenID Connect provider.
	OIDC *OIDCLogin `json:"oidc,omitempty"`
}

// OIDCLogin logs users in at the edge against an OpenID Connect provider:
// the authorization code flow with PKCE, state and nonce; the ID token's
// claims are written into the session, mapped to session keys.
type OIDCLogin struct {
	// The provider's issuer URL; its discovery document is fetched from
	// <issuer>/.well-known/openid-configuration. Required.
	Issuer string `json:"issuer,omitempty"`
	// The client ID registered with the provider. Required.
	ClientID string `json:"client_id,omitempty"`
	// The client secret. Placeholders are resolved when the config loads,
	// as for the session secret. Empty for a public client (PKCE only).
	ClientSecret string `json:"client_secret,omitempty"`
	// A file that holds the client secret, read when the config loads.
	ClientSecretFile string `json:"client_secret_file,omitempty"`
	// The scopes asked for. Default: openid email profile.
	Scopes []string `json:"scopes,omitempty"`
	// The callback path registered with the provider. Default:
	// /_session/callback.
	RedirectPath string `json:"redirect_path,omitempty"`
	// The callback's absolute URL, as registered with the provider, for a
	// Caddy behind a proxy that ends TLS (where the request's own scheme is
	// http). Its path is the callback's path. Default: the request's
	// scheme and Host, and redirect_path.
	RedirectURL string `json:"redirect_url,omitempty"`
	// The path that starts a login: <login_path>?next=<path>. Default:
	// /_session/login.
	LoginPath string `json:"login_path,omitempty"`
	// The path that logs out. Default: /_session/logout.
	LogoutPath string `json:"logout_path,omitempty"`
	// Where the browser goes after a logout: given to the provider as
	// post_logout_redirect_uri, or followed directly when the provider has
	// no end_session_endpoint. Default: /.
	PostLogoutRedirect string `json:"post_logout_redirect,omitempty"`
	// The ID token claims written into the session, claim name to session
	// key. Default: sub to user_key (or to "sub" without user_key).
	Claims map[string]string `json:"claims,omitempty"`
	// The path where the provider POSTs OIDC Back-Channel Logout 1.0
	// logout tokens. A verified one with a sid ends the sessions of that
	// provider session (store modes); one with a sub alone, every session
	// of the user. Needs user_key, sub mapped to user_key, and a memory or
	// Redis store or a revocation_store. Default: off.
	BackChannelLogoutPath string `json:"backchannel_logout_path,omitempty"`
	// The request header that hands the login's access token to the
	// upstream ("Bearer <token>" in Authorization, the token alone in any
	// other header). Only with a memory or Redis store, which keeps the
	// tokens; a client's own header of that name is always removed.
	// Default: off.
	ForwardAccessToken string `json:"forward_access_token,omitempty"`
}

// The defaults of OIDCLogin's paths and scopes.
const (
	DefaultOIDCRedirectPath = "/_session/callback"
	DefaultOIDCLoginPath    = "/_session/login"
	DefaultOIDCLogoutPath   = "/_session/logout"
)

var defaultOIDCScopes = []string{oidc.ScopeOpenID, "email", "profile"}

// preLoginLifetime bounds how long a user may take at the provider.
const preLoginLifetime = 10 * time.Minute

// oidcFailureReasons are the label values of the login failures metric,
// each a documented answer to a bad callback.
var oidcFailureReasons = []string{
	"unavailable",      // 503: the provider's discovery has not succeeded yet
	"provider_error",   // 401: the provider answered with an error
	"missing_prelogin", // 400: no pre-login cookie (another browser, or expired)
	"bad_prelogin",     // 400: the pre-login cookie is tampered with or expired
	"state_mismatch",   // 400: state missing or not the one this browser started with
	"state_replayed",   // 400: this state was already used
	"exchange_refused", // 401: the provider refused the code
	"exchange_failed",  // 502: the provider could not be reached to exchange the code
	"id_token_invalid", // 401: issuer, audience, expiry or signature is wrong, or no ID token
	"nonce_mismatch",   // 401: the ID token is not for this login
	"session_refused",  // 503: the session cannot take the claims (store unavailable)
}

// preLogin is what the pre-login cookie carries from the start of a login
// to its callback, signed and encrypted.
type preLogin struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
}

// oidcLogin is an OIDCLogin at work in a handler.
type oidcLogin struct {
	cfg          *OIDCLogin
	clientSecret string
	scopes       []string
	claims       map[string]string
	cookieName   string // the pre-login cookies' prefix; each is <cookieName>_<hash of its state>
	cookiePath   string // the callback's path
	preLoginPath string // the pre-login cookies' Path
	secure       bool
	codec        *securecookie.SecureCookie
	logger       *zap.Logger
	client       *http.Client // for discovery, keys and the code exchange
	provider     atomic.Pointer[discoveredProvider]
	usedStates   usedTokens      // states of finished logins
	usedJTIs     usedTokens      // jti of logout tokens taken
	ctx          context.Context // the config's: discovery stops when it unloads

	// With a memory or Redis store, the tokens are kept (see oidcTokens).
	store         sessioncore.Store // nil in cookie mode
	sessions      *sessioncore.Manager
	lifetime      time.Duration // the sessions', for the sid links
	linkKey       []byte        // derives the sid links' IDs
	forwardHeader string
	refresher     refresher
	parsed        parsedTokens
}

// discoveredProvider is the provider as its discovery document describes it.
type discoveredProvider struct {
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	endSession string // end_session_endpoint, if any
}

// validate checks OIDCLogin's own settings.
func (c *OIDCLogin) validate() error {
	switch {
	case c.Issuer == "":
		return errors.New("login oidc: issuer is required")
	case c.ClientID == "":
		return errors.New("login oidc: client_id is required")
	case c.ClientSecret != "" && c.ClientSecretFile != "":
		return errors.New("login oidc: set client_secret or client_secret_file, not both")
	}
	if c.RedirectURL != "" {
		u, err := url.Parse(c.RedirectURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.HasPrefix(u.Path, "/") || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("login oidc: redirect_url must be an absolute http(s) URL with a path and no query, not %q", c.RedirectURL)
		}
		if c.RedirectPath != "" && c.RedirectPath != u.Path {
			return fmt.Errorf("login oidc: redirect_path %q is not the path of redirect_url %q; set one of them", c.RedirectPath, c.RedirectURL)
		}
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("login oidc: issuer must be an http(s) URL, not %q", c.Issuer)
	}
	for name, p := range map[string]string{"redirect_path": c.RedirectPath, "login_path": c.LoginPath, "logout_path": c.LogoutPath, "backchannel_logout_path": c.BackChannelLogoutPath} {
		if p != "" && !strings.HasPrefix(p, "/") {
			return fmt.Errorf("login oidc: %s must start with /, not %q", name, p)
		}
	}
	for claim, key := range c.Claims {
		if claim == "" || key == "" {
			return errors.New("login oidc: claims maps a claim name to a session key; neither may be empty")
		}
		if strings.HasPrefix(key, sessioncore.PrivatePrefix) {
			return fmt.Errorf("login oidc: claims: session key %q: %v", key, sessioncore.ErrReservedKey)
		}
	}
	return nil
}

// provisionOIDC sets up the login: its secrets, the pre-login cookie's
// keys (derived from the session secret), and discovery, which runs in the
// background so that Caddy starts while the provider is down.
func (h *Handler) provisionOIDC(ctx caddy.Context, sessionSecret []byte, session sessioncore.Config, store sessioncore.Store) error {
	cookieName := session.CookieName
	c := h.Login.OIDC
	if err := c.validate(); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	secret, fromPlaceholder, err := resolveSecret(repl, c.ClientSecret)
	if err != nil {
		return fmt.Errorf("login oidc: client_secret: %w", err)
	}
	if secret != "" && !fromPlaceholder {
		h.logger.Warn("login oidc: client_secret is written in the config itself, where the admin API and autosave.json show it; use {env.*}, {file.*} or client_secret_file")
	}
	if c.ClientSecretFile != "" {
		if secret, err = readSecretFile(c.ClientSecretFile); err != nil {
			return fmt.Errorf("login oidc: %w", err)
		}
	}
	claims := c.Claims
	if len(claims) == 0 {
		claims = map[string]string{"sub": cmp.Or(h.UserKey, "sub")}
	}
	_, indexed := store.(sessioncore.UserIndex)
	if c.BackChannelLogoutPath != "" && (h.UserKey == "" || claims["sub"] != h.UserKey || h.RevocationStore == nil && !indexed) {
		return errors.New("login oidc: backchannel_logout_path ends a user's sessions by the logout token's sub or sid: it needs user_key, the sub claim mapped to user_key, and a memory or Redis store or a revocation_store")
	}
	if c.ForwardAccessToken != "" && store == nil {
		return errors.New("login oidc: forward_access_token needs a memory or Redis store, which keeps the tokens server side; the cookie store keeps none")
	}
	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = defaultOIDCScopes
	}
	callbackPath := cmp.Or(c.RedirectPath, DefaultOIDCRedirectPath)
	if c.RedirectURL != "" {
		u, _ := url.Parse(c.RedirectURL) // checked by validate
		callbackPath = u.Path
	}
	o := &oidcLogin{
		cfg:          c,
		clientSecret: secret,
		scopes:       scopes,
		claims:       claims,
		cookieName:   cookieName + "_login",
		cookiePath:   callbackPath,
		preLoginPath: callbackPath,
		secure:       h.CookieSecure,
		logger:       h.logger.Named("oidc"),
		client:       &http.Client{Timeout: 10 * time.Second},
		ctx:          ctx,
	}
	if strings.HasPrefix(strings.ToLower(cookieName), "__host-") {
		o.preLoginPath = "/" // the prefix requires it; browsers drop the cookie otherwise
	}
	if o.codec, err = preLoginCodec(sessionSecret); err != nil {
		return err
	}
	if c.ForwardAccessToken != "" && !strings.EqualFold(c.ForwardAccessToken, "Authorization") {
		h.logger.Warn("login oidc: forward_access_token: Caddy's debug logs of reverse_proxy redact Authorization only; access tokens in another header appear in them", zap.String("header", c.ForwardAccessToken))
	}
	if store != nil {
		if _, mapped := claims["sub"]; !mapped {
			return errors.New("login oidc: with a memory or Redis store the login's tokens are kept, bound to their user: map the sub claim to a session key (claims { sub <key> })")
		}
		o.store, o.lifetime, o.sessions = store, session.Lifetime, h.sessions
		if c.ForwardAccessToken != "" {
			o.forwardHeader = http.CanonicalHeaderKey(c.ForwardAccessToken)
			o.parsed.bearer = o.forwardHeader == "Authorization"
		}
		if o.linkKey, err = hkdf.Key(sha256.New, sessionSecret, nil, "sessiongate oidc sid link v1", 32); err != nil {
			return fmt.Errorf("login oidc: deriving the sid link key: %w", err)
		}
	}
	h.oidc = o
	go o.discover()
	return nil
}

// preLoginCodec seals the pre-login cookies under keys derived from the
// session secret with HKDF-SHA256, as the securecookie codec derives its
// own, with info strings of their own: no key is shared with the session
// cookie.
func preLoginCodec(secret []byte) (*securecookie.SecureCookie, error) {
	hashKey, err := hkdf.Key(sha256.New, secret, nil, "sessiongate oidc pre-login v1 hmac-sha256", 32)
	if err != nil {
		return nil, fmt.Errorf("login oidc: deriving the pre-login signing key: %w", err)
	}
	blockKey, err := hkdf.Key(sha256.New, secret, nil, "sessiongate oidc pre-login v1 aes-256", 32)
	if err != nil {
		return nil, fmt.Errorf("login oidc: deriving the pre-login encryption key: %w", err)
	}
	codec := securecookie.New(hashKey, blockKey)
	codec.MaxAge(int(preLoginLifetime / time.Second))
	codec.SetSerializer(securecookie.JSONEncoder{})
	return codec, nil
}

// discover fetches the provider's discovery document, retrying with
// backoff until it succeeds or the config unloads; until then, logins
// answer 503.
func (o *oidcLogin) discover() {
	ctx := oidc.ClientContext(o.ctx, o.client)
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 30*time.Second) {
		p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
		if err == nil {
			var meta struct {
				EndSession string `json:"end_session_endpoint"`
			}
			_ = p.Claims(&meta) // optional metadata
			o.provider.Store(&discoveredProvider{
				provider:   p,
				verifier:   p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID}),
				endSession: meta.EndSession,
			})
			o.logger.Info("OpenID provider discovered", zap.String("issuer", o.cfg.Issuer))
			return
		}
		o.logger.Warn("OpenID provider discovery failed; logins answer 503 until it succeeds", zap.String("issuer", o.cfg.Issuer), zap.Error(err), zap.Duration("retry_in", wait))
		select {
		case <-o.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// route reports which of the login's paths r is for, if any.
func (o *oidcLogin) route(r *http.Request) string {
	switch r.URL.Path {
	case cmp.Or(o.cfg.LoginPath, DefaultOIDCLoginPath):
		return "login"
	case o.cookiePath:
		return "callback"
	case cmp.Or(o.cfg.LogoutPath, DefaultOIDCLogoutPath):
		return "logout"
	case o.cfg.BackChannelLogoutPath:
		if o.cfg.BackChannelLogoutPath != "" {
			return "backchannel"
		}
	}
	return ""
}

// oauth2Config is the client's configuration for a request: the redirect
// URL is redirect_url, or else on the host the browser is using.
func (o *oidcLogin) oauth2Config(p *discoveredProvider, r *http.Request) *oauth2.Config {
	redirectURL := o.cfg.RedirectURL
	if redirectURL == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		redirectURL = scheme + "://" + r.Host + o.cookiePath
	}
	return &oauth2.Config{
		ClientID:     o.cfg.ClientID,
		ClientSecret: o.clientSecret,
		Endpoint:     p.provider.Endpoint(),
		RedirectURL:  redirectURL,
		Scopes:       o.scopes,
	}
}

// fail answers a login that cannot go on, counting it by reason.
func (o *oidcLogin) fail(status int, reason string, err error) error {
	metrics.oidcFailures.inc(reason)
	o.logger.Warn("login failed", zap.String("reason", reason), zap.Error(err))
	return caddyhttp.Error(status, fmt.Errorf("login: %s", reason))
}

// serveLogin starts a login: it binds a fresh state, nonce and PKCE
// verifier to the browser in the pre-login cookie and sends the browser
// to the provider.
func (o *oidcLogin) serveLogin(w http.ResponseWriter, r *http.Request) error {
	p := o.provider.Load()
	if p == nil {
		w.Header().Set("Retry-After", "5")
		return o.fail(http.StatusServiceUnavailable, "unavailable", errors.New("provider not discovered yet"))
	}
	pl := preLogin{
		State:    oauth2.GenerateVerifier(), // 32 random bytes, base64url
		Nonce:    oauth2.GenerateVerifier(),
		Verifier: oauth2.GenerateVerifier(),
		Next:     safeNext(r.URL.Query().Get("next")),
	}
	name := o.preLoginName(pl.State)
	value, err := o.codec.Encode(name, pl)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, errors.New("login: cannot encode the pre-login cookie"))
	}
	http.SetCookie(w, o.preLoginCookie(name, value, int(preLoginLifetime/time.Second)))
	w.Header().Set("Cache-Control", "no-store")
	url := o.oauth2Config(p, r).AuthCodeURL(pl.State, oidc.Nonce(pl.Nonce), oauth2.S256ChallengeOption(pl.Verifier))
	http.Redirect(w, r, url, http.StatusFound)
	return nil
}

// preLoginName names the pre-login cookie of the login with state: one
// cookie per login, so that two tabs logging in at once do not overwrite
// each other's, and a forged callback cannot name one without its state.
func (o *oidcLogin) preLoginName(state string) string {
	sum := sha256.Sum256([]byte(state))
	return o.cookieName + "_" + hex.EncodeToString(sum[:6])
}

// preLoginCookie is a pre-login cookie; maxAge < 0 deletes it. It is sent
// only to the callback (unless a __Host- name requires Path=/), and with
// SameSite=Lax, since the provider brings the browser back with a
// top-level GET.
func (o *oidcLogin) preLoginCookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: o.preLoginPath, MaxAge: maxAge,
		HttpOnly: true, Secure: o.secure, SameSite: http.SameSiteLaxMode}
}

// hasPreLogin reports whether r carries any pre-login cookie.
func (o *oidcLogin) hasPreLogin(r *http.Request) bool {
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, o.cookieName+"_") {
			return true
		}
	}
	return false
}

// serveCallback finishes a login: it checks the state against the
// pre-login cookie, exchanges the code, verifies the ID token and its
// nonce, renews the session and writes the mapped claims into it, then
// sends the browser to the page it started from. The session is saved by
// the handler as for any response.
func (o *oidcLogin) serveCallback(session *sessioncore.Session, w http.ResponseWriter, r *http.Request) error {
	p := o.provider.Load()
	if p == nil {
		w.Header().Set("Retry-After", "5")
		return o.fail(http.StatusServiceUnavailable, "unavailable", errors.New("provider not discovered yet"))
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		return o.fail(http.StatusBadRequest, "state_mismatch", errors.New("the callback has no state"))
	}
	name := o.preLoginName(state)
	cookie, err := r.Cookie(name)
	if err != nil {
		if o.hasPreLogin(r) {
			return o.fail(http.StatusBadRequest, "state_mismatch", errors.New("state is not one this browser started a login with"))
		}
		return o.fail(http.StatusBadRequest, "missing_prelogin", err)
	}
	// The pre-login cookie is single-use, whatever happens next.
	http.SetCookie(w, o.preLoginCookie(name, "", -1))
	var pl preLogin
	if err := o.codec.Decode(name, cookie.Value, &pl); err != nil {
		return o.fail(http.StatusBadRequest, "bad_prelogin", errors.New("the pre-login cookie does not verify or has expired"))
	}
	if subtle.ConstantTimeCompare([]byte(state), []byte(pl.State)) != 1 {
		return o.fail(http.StatusBadRequest, "state_mismatch", errors.New("state does not match the pre-login cookie"))
	}
	if e := q.Get("error"); e != "" {
		return o.fail(http.StatusUnauthorized, "provider_error", fmt.Errorf("provider answered %q", sessioncore.HeaderSafe(e)))
	}
	if o.usedStates.seen(pl.State) {
		return o.fail(http.StatusBadRequest, "state_replayed", errors.New("state already used"))
	}
	ctx := oidc.ClientContext(r.Context(), o.client)
	issued := time.Now()
	token, err := o.oauth2Config(p, r).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pl.Verifier))
	if err != nil {
		var refused *oauth2.RetrieveError
		if errors.As(err, &refused) {
			return o.fail(http.StatusUnauthorized, "exchange_refused", fmt.Errorf("provider refused the code: %s", sessioncore.HeaderSafe(refused.ErrorCode)))
		}
		return o.fail(http.StatusBadGateway, "exchange_failed", err)
	}
	rawIDToken, _ := token.Extra("id_token").(string)
	if rawIDToken == "" {
		return o.fail(http.StatusUnauthorized, "id_token_invalid", errors.New("the token response has no id_token"))
	}
	idToken, err := p.verifier.Verify(ctx, rawIDToken)
	if err != nil {
		return o.fail(http.StatusUnauthorized, "id_token_invalid", err)
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(pl.Nonce)) != 1 {
		return o.fail(http.StatusUnauthorized, "nonce_mismatch", errors.New("the ID token's nonce is not this login's"))
	}
	var claims map[string]json.RawMessage
	if err := idToken.Claims(&claims); err != nil {
		return o.fail(http.StatusUnauthorized, "id_token_invalid", err)
	}
	// Recorded once the login succeeded, so that failed callbacks cannot
	// fill the memory; the provider refuses a code twice meanwhile.
	if !o.usedStates.claim(pl.State, time.Now()) {
		return o.fail(http.StatusBadRequest, "state_replayed", errors.New("state already used"))
	}
	if err := session.Apply(o.loginMutation(session, claims)); err != nil {
		return o.fail(http.StatusServiceUnavailable, "session_refused", err)
	}
	if o.store != nil {
		if err := o.keepLoginTokens(r.Context(), session, token, issued, idToken, claims); err != nil {
			return o.fail(http.StatusServiceUnavailable, "session_refused", err)
		}
	}
	metrics.oidcLogins.Inc()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, pl.Next, http.StatusFound)
	return nil
}

// loginMutation is the change a login makes to the session: a new session
// ID (against fixation) and every mapped claim, a claim the token lacks
// removing its key, so nothing of a previous login survives under it. When
// the session belongs to another user (its sub's key holds another value),
// the login replaces it whole: nothing the apps wrote for the previous user
// passes to this one.
func (o *oidcLogin) loginMutation(session *sessioncore.Session, claims map[string]json.RawMessage) *sessioncore.Mutation {
	patch := make(map[string]json.RawMessage, len(o.claims))
	for claim, key := range o.claims {
		value, ok := claims[claim]
		if !ok {
			value = json.RawMessage("null")
		}
		patch[key] = value
	}
	m := new(sessioncore.Mutation)
	m.SetRenew()
	if subKey, ok := o.claims["sub"]; ok {
		if previous, ok := session.Get(subKey); ok && string(previous) != "null" && !bytes.Equal(previous, claims["sub"]) {
			for key, value := range patch {
				if string(value) == "null" {
					delete(patch, key)
				}
			}
			raw, _ := json.Marshal(patch) // raw messages from a decoded token marshal
			_ = m.SetReplace(raw)         // an object of valid JSON values
			return m
		}
	}
	raw, _ := json.Marshal(patch)
	_ = m.AddUpdate(raw)
	return m
}

// serveLogout clears the session and sends the browser to the provider's
// end_session_endpoint (RP-initiated logout) when it has one, or to
// post_logout_redirect.
func (o *oidcLogin) serveLogout(session *sessioncore.Session, w http.ResponseWriter, r *http.Request) error {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		// Another site must not log users out with a link or an image.
		return caddyhttp.Error(http.StatusForbidden, errors.New("logout: cross-site request refused"))
	}
	tokens := tokensOf(session) // store modes: the ID token names the login to end
	if err := session.Clear(); err != nil {
		// A null session (the store is down): the stored session cannot be
		// cleared, and the user must not be told it was.
		return caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("logout: %w", err))
	}
	target := cmp.Or(o.cfg.PostLogoutRedirect, "/")
	if p := o.provider.Load(); p != nil && p.endSession != "" {
		if u, err := url.Parse(p.endSession); err == nil {
			q := u.Query()
			q.Set("client_id", o.cfg.ClientID)
			if tokens != nil && tokens.IDToken != "" {
				q.Set("id_token_hint", tokens.IDToken)
			}
			if o.cfg.PostLogoutRedirect != "" {
				q.Set("post_logout_redirect_uri", o.cfg.PostLogoutRedirect)
			}
			u.RawQuery = q.Encode()
			target = u.String()
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
	return nil
}

// safeNext returns next when it is a path on this site, "/" otherwise:
// never a scheme, a host, a protocol-relative "//" or a "/\" that browsers
// read as one, whatever its encoding.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || len(next) > 2048 {
		return "/"
	}
	if strings.ContainsAny(next, "\\\r\n\t\x00") || strings.HasPrefix(next, "//") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return "/"
	}
	// No encoded slash or backslash, which a server or browser may decode
	// into "//" or "/\", and no dot segment, which http.Redirect cleans
	// away ("/a/../%2fevil" would go out as "/%2fevil").
	lower := strings.ToLower(u.EscapedPath())
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return "/"
	}
	for segment := range strings.SplitSeq(u.Path, "/") {
		if segment == "." || segment == ".." {
			return "/"
		}
	}
	return next
}

// usedTokens remembers single-use values (the states of finished logins,
// the jti of logout tokens) until a pre-login cookie would have expired,
// so that none is accepted twice on this instance.
type usedTokens struct {
	mu   sync.Mutex
	used map[string]time.Time
}

// maxUsedTokens bounds a usedTokens; when it is full of young values the
// oldest go first, rather than refusing new ones.
const maxUsedTokens = 1 << 16

// seen reports whether v was claimed.
func (u *usedTokens) seen(v string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.used[v]
	return ok
}

// claim records v as used and reports whether it was new.
func (u *usedTokens) claim(v string, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.used == nil {
		u.used = make(map[string]time.Time)
	}
	if _, ok := u.used[v]; ok {
		return false
	}
	if len(u.used) >= maxUsedTokens {
		u.evict(now)
	}
	u.used[v] = now
	return true
}

// evict drops the values older than a pre-login cookie, and if that is not
// a quarter of them, the oldest quarter.
func (u *usedTokens) evict(now time.Time) {
	for v, at := range u.used {
		if now.Sub(at) > preLoginLifetime {
			delete(u.used, v)
		}
	}
	if len(u.used) < maxUsedTokens*3/4 {
		return
	}
	times := make([]time.Time, 0, len(u.used))
	for _, at := range u.used {
		times = append(times, at)
	}
	slices.SortFunc(times, time.Time.Compare)
	cutoff := times[len(times)/4]
	for v, at := range u.used {
		if !at.After(cutoff) {
			delete(u.used, v)
		}
	}
}

// parseLogin parses login's block:
//
//	login oidc {
//		issuer <url>
//		client_id <id>
//		client_secret <value>
//		client_secret_file <path>
//		scopes <scope>...
//		redirect_path <path>
//		redirect_url <url>
//		login_path <path>
//		logout_path <path>
//		post_logout_redirect <url>
//		backchannel_logout_path <path>
//		claims {
//			<claim> <session key>
//		}
//	}
func parseLogin(p *caddyfileParser, d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	if d.Val() != "oidc" {
		return d.Errf("login: unknown method %q; the one method is oidc", d.Val())
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	c := &OIDCLogin{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("login oidc: %s specified more than once", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "issuer":
			c.Issuer, err = singleArg(d)
		case "client_id":
			c.ClientID, err = singleArg(d)
		case "client_secret":
			c.ClientSecret, err = singleArg(d)
		case "client_secret_file":
			c.ClientSecretFile, err = singleArg(d)
		case "scopes":
			c.Scopes = d.RemainingArgs()
			if len(c.Scopes) == 0 {
				return d.ArgErr()
			}
		case "redirect_path":
			c.RedirectPath, err = singleArg(d)
		case "redirect_url":
			c.RedirectURL, err = singleArg(d)
		case "login_path":
			c.LoginPath, err = singleArg(d)
		case "logout_path":
			c.LogoutPath, err = singleArg(d)
		case "post_logout_redirect":
			c.PostLogoutRedirect, err = singleArg(d)
		case "backchannel_logout_path":
			c.BackChannelLogoutPath, err = singleArg(d)
		case "forward_access_token":
			c.ForwardAccessToken, err = singleArg(d)
		case "claims":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.Claims = map[string]string{}
			for n := d.Nesting(); d.NextBlock(n); {
				claim := d.Val()
				key, kerr := singleArg(d)
				if kerr != nil {
					return kerr
				}
				c.Claims[claim] = key
			}
		default:
			return d.Errf("unrecognized login oidc option %q", sub)
		}
		if err != nil {
			return err
		}
	}
	if err := c.validate(); err != nil {
		return d.Err(err.Error())
	}
	p.h.Login = &Login{OIDC: c}
	return nil
}

// backChannelLogoutEvent is the member of a logout token's events claim
// that makes it one (OIDC Back-Channel Logout 1.0, section 2.4).
const backChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// maxLogoutRequest bounds the body of a back-channel logout request.
const maxLogoutRequest = 64 << 10

// serveBackChannelLogout takes a logout token the provider POSTs, verifies
// it (signature, issuer, audience, expiry as for an ID token; the logout
// event; no nonce; a jti not seen before) and ends the sessions of its sub
// or sid with end. Answers as the specification asks: 200 when done, 400
// for a token that does not verify, 501 for one that names only a sid in
// cookie mode.
func (o *oidcLogin) serveBackChannelLogout(w http.ResponseWriter, r *http.Request, end func(ctx context.Context, sub, sid string) error) error {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return caddyhttp.Error(http.StatusMethodNotAllowed, errors.New("back-channel logout takes POST"))
	}
	p := o.provider.Load()
	if p == nil {
		metrics.oidcBackChannel.inc("unavailable")
		return caddyhttp.Error(http.StatusServiceUnavailable, errors.New("back-channel logout: provider not discovered yet"))
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutRequest)
	if err := r.ParseForm(); err != nil {
		return o.refuseLogoutToken(http.StatusBadRequest, errors.New("unreadable form"))
	}
	raw := r.PostForm.Get("logout_token")
	if raw == "" {
		return o.refuseLogoutToken(http.StatusBadRequest, errors.New("no logout_token"))
	}
	token, err := p.verifier.Verify(oidc.ClientContext(r.Context(), o.client), raw)
	if err != nil {
		return o.refuseLogoutToken(http.StatusBadRequest, err)
	}
	var claims struct {
		Events map[string]json.RawMessage `json:"events"`
		Nonce  *string                    `json:"nonce"`
		JTI    string                     `json:"jti"`
		SID    string                     `json:"sid"`
	}
	if err := token.Claims(&claims); err != nil {
		return o.refuseLogoutToken(http.StatusBadRequest, err)
	}
	switch {
	case claims.Events[backChannelLogoutEvent] == nil:
		return o.refuseLogoutToken(http.StatusBadRequest, errors.New("not a logout token: no back-channel logout event"))
	case claims.Nonce != nil:
		return o.refuseLogoutToken(http.StatusBadRequest, errors.New("a logout token must not have a nonce"))
	case claims.JTI == "":
		return o.refuseLogoutToken(http.StatusBadRequest, errors.New("a logout token must have a jti"))
	case token.Subject == "" && claims.SID == "":
		return o.refuseLogoutToken(http.StatusBadRequest, errors.New("a logout token must have a sub or a sid"))
	case token.Subject == "" && o.store == nil:
		// Cookie sessions hold no sid, and no link from a sid to its user
		// is kept without a store.
		metrics.oidcBackChannel.inc("rejected")
		return caddyhttp.Error(http.StatusNotImplemented, errors.New("back-channel logout by sid alone needs a memory or Redis store; the provider must send sub"))
	}
	if !o.usedJTIs.claim(token.Issuer+"\x00"+claims.JTI, time.Now()) {
		return o.refuseLogoutToken(http.StatusBadRequest, errors.New("logout token replayed"))
	}
	if err := end(r.Context(), token.Subject, claims.SID); err != nil {
		metrics.oidcBackChannel.inc("failed")
		o.logger.Error("back-channel logout could not end the sessions", zap.Error(err))
		return caddyhttp.Error(http.StatusServiceUnavailable, errors.New("back-channel logout: the revocation cannot be saved"))
	}
	metrics.oidcBackChannel.inc("revoked")
	o.logger.Info("back-channel logout ended sessions", zap.Bool("by_sid", claims.SID != ""))
	w.WriteHeader(http.StatusOK)
	return nil
}

// refuseLogoutToken answers a logout token that does not verify.
func (o *oidcLogin) refuseLogoutToken(status int, err error) error {
	metrics.oidcBackChannel.inc("rejected")
	o.logger.Warn("back-channel logout refused", zap.Error(err))
	return caddyhttp.Error(status, errors.New("back-channel logout: invalid logout token"))
}
