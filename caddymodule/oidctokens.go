package caddymodule

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// A login's tokens, in store modes. The access, refresh and ID tokens are
// kept server side as the session's private value "oidc": the store keeps
// them with the session (renewed, revoked, expired and deleted with it),
// and no header, placeholder, matcher, view or assertion shows them. The
// access token is refreshed in the last minute of its life, before the
// request goes upstream, and forward_access_token hands it to the
// upstream. In cookie mode no token is kept: the cookie would carry
// bearer credentials to every browser request and past its size budget.

// oidcPrivate names the session's private value that holds the tokens.
const oidcPrivate = "oidc"

// refreshMargin is how long before its expiry an access token is
// refreshed: long enough for the upstream to use it.
const refreshMargin = time.Minute

// refreshTimeout bounds a refresh; a request waits for it.
const refreshTimeout = 10 * time.Second

// oidcTokens are one login's tokens.
type oidcTokens struct {
	// Sub is the user they were issued to: they are dropped should the
	// session come to name another user.
	Sub string `json:"sub"`
	// SID is the provider's session ID, for back-channel logout.
	SID          string `json:"sid,omitempty"`
	AccessToken  string `json:"access_token,omitempty"`
	TokenType    string `json:"token_type,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// Expiry is the access token's; zero when the provider did not say.
	Expiry time.Time `json:"expiry,omitzero"`
	// RefreshAt is when the access token is refreshed: a minute before
	// its expiry, or half-way through a life shorter than two minutes.
	RefreshAt time.Time `json:"refresh_at,omitzero"`
	IDToken   string    `json:"id_token,omitempty"`
}

// expired reports whether the access token has expired at now.
func (t *oidcTokens) expired(now time.Time) bool {
	return !t.Expiry.IsZero() && !now.Before(t.Expiry)
}

// due reports whether the access token is to be refreshed at now.
func (t *oidcTokens) due(now time.Time) bool {
	return t.RefreshToken != "" && !t.RefreshAt.IsZero() && !now.Before(t.RefreshAt)
}

// refreshAt is when a token issued at issued and expiring at expiry is
// refreshed; zero when it does not expire.
func refreshAt(issued, expiry time.Time) time.Time {
	if expiry.IsZero() {
		return time.Time{}
	}
	life := expiry.Sub(issued)
	return issued.Add(max(life-refreshMargin, life/2))
}

// tokensOf returns the tokens kept in s, or nil.
func tokensOf(s *sessioncore.Session) *oidcTokens {
	raw, ok := s.Private(oidcPrivate)
	if !ok {
		return nil
	}
	return parseTokens(raw)
}

// parsedTokens remembers the tokens last parsed from each session's
// private value, by session ID: three JWTs are some 2.5 KB of JSON, which
// would cost a request more than the rest of its session work to parse
// again while they have not changed. The tokens it returns are shared and
// must not be modified.
type parsedTokens struct {
	bearer bool // the access token is forwarded as "Bearer <token>"

	mu   sync.Mutex
	byID map[string]parsedEntry
}

type parsedEntry struct {
	raw     []byte // never modified: a session's private value is replaced, not changed
	tokens  *oidcTokens
	forward string // the forwarded header's value
}

// maxParsedTokens bounds the sessions remembered (about 5 KB each).
const maxParsedTokens = 4096

// of returns the tokens kept in s, or nil, and the value of the header
// that forwards the access token.
func (c *parsedTokens) of(s *sessioncore.Session) (*oidcTokens, string) {
	raw, ok := s.Private(oidcPrivate)
	if !ok {
		return nil, ""
	}
	id := s.ID()
	c.mu.Lock()
	e, ok := c.byID[id]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return e.tokens, e.forward
	}
	t := parseTokens(raw)
	if t == nil {
		return nil, ""
	}
	forward := c.forwardValue(t)
	if id == "" {
		return t, forward
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID = map[string]parsedEntry{}
	}
	if _, ok := c.byID[id]; !ok && len(c.byID) >= maxParsedTokens {
		for other := range c.byID { // any one: map order is random
			delete(c.byID, other)
			break
		}
	}
	c.byID[id] = parsedEntry{raw, t, forward}
	return t, forward
}

// forwardValue is the forwarded header's value for t.
func (c *parsedTokens) forwardValue(t *oidcTokens) string {
	if c.bearer {
		return "Bearer " + t.AccessToken
	}
	return t.AccessToken
}

func parseTokens(raw []byte) *oidcTokens {
	var t oidcTokens
	if json.Unmarshal(raw, &t) != nil {
		return nil
	}
	return &t
}

// newTokens are the tokens of a token response received at issued:
// refreshed ones keep the previous refresh and ID tokens when the
// provider sent no new ones.
func newTokens(token *oauth2.Token, issued time.Time, previous *oidcTokens) *oidcTokens {
	t := &oidcTokens{
		AccessToken:  token.AccessToken,
		TokenType:    token.Type(),
		RefreshToken: token.RefreshToken,
		Expiry:       token.Expiry,
		RefreshAt:    refreshAt(issued, token.Expiry),
	}
	if idToken, ok := token.Extra("id_token").(string); ok {
		t.IDToken = idToken
	}
	if previous != nil {
		t.Sub, t.SID = previous.Sub, previous.SID
		if t.RefreshToken == "" {
			t.RefreshToken = previous.RefreshToken
		}
		if t.IDToken == "" {
			t.IDToken = previous.IDToken
		}
	}
	return t
}

// keepTokens stores t in s.
func keepTokens(s *sessioncore.Session, t *oidcTokens) error {
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return s.SetPrivate(oidcPrivate, raw)
}

// ownsTokens reports whether s still names the user t was issued to
// (provisioning requires the sub claim to be mapped in store modes).
func (o *oidcLogin) ownsTokens(s *sessioncore.Session, t *oidcTokens) bool {
	return s.TextIs(o.claims["sub"], t.Sub)
}

// onOpen runs on every request whose session is open, before it is handed
// upstream: it refreshes an access token that is due and forwards it. A
// refresh the provider refuses with invalid_grant ends the login: the
// session is cleared, as by a logout, and the request goes on without it.
func (o *oidcLogin) onOpen(r *http.Request, s *sessioncore.Session) {
	if route := o.route(r); route == "callback" || route == "logout" {
		return // a login or logout of its own: nothing to refresh or forward
	}
	t, forward := o.parsed.of(s)
	if t == nil {
		return
	}
	if !o.ownsTokens(s, t) {
		// An upstream gave the session to another user.
		_ = s.SetPrivate(oidcPrivate, nil)
		return
	}
	if t.due(time.Now()) {
		if stored := o.refreshedElsewhere(r.Context(), s, t); stored != nil {
			t = stored
		} else if t = o.refresh(r, s, t); t == nil {
			return
		}
		forward = o.parsed.forwardValue(t)
	}
	if o.forwardHeader != "" && t.AccessToken != "" && !t.expired(time.Now()) {
		r.Header[o.forwardHeader] = []string{forward} // canonical since provisioning
	}
}

// refreshedElsewhere returns the tokens the store holds now for s when
// another request or gateway refreshed them since s was opened, and they
// are not due: this request's copy of the session may lag (a client-side
// cache), and redeeming a refresh token that was already rotated is a
// reuse, which providers that detect it punish by revoking the whole
// login. Nil otherwise, and when the store cannot tell: then the refresh
// goes ahead, and an invalid_grant is checked against the store again.
func (o *oidcLogin) refreshedElsewhere(ctx context.Context, s *sessioncore.Session, t *oidcTokens) *oidcTokens {
	if o.store == nil {
		return nil
	}
	stored, err := o.storedTokens(ctx, s.ID())
	if err != nil || stored == nil || stored.RefreshToken == t.RefreshToken || stored.Sub != t.Sub || stored.due(time.Now()) {
		return nil
	}
	metrics.oidcRefreshes.inc("superseded")
	return stored
}

// refresh redeems t's refresh token and saves the new tokens to the store
// at once, so that the session's other requests, on every instance, use
// them. It returns the tokens to use: the new ones; the old ones when the
// refresh failed for a reason that does not end the login (they are tried
// again later); nil when the login ended.
func (o *oidcLogin) refresh(r *http.Request, s *sessioncore.Session, t *oidcTokens) *oidcTokens {
	p := o.provider.Load()
	if p == nil {
		metrics.oidcRefreshes.inc("failed")
		return t
	}
	fresh, err := o.refresher.redeem(t, func(ctx context.Context) (*oidcTokens, error) {
		ctx = oidc.ClientContext(ctx, o.client)
		issued := time.Now()
		token, err := o.oauth2Config(p, r).TokenSource(ctx, &oauth2.Token{RefreshToken: t.RefreshToken}).Token()
		if err != nil {
			return nil, err
		}
		fresh := newTokens(token, issued, t)
		if raw, ok := token.Extra("id_token").(string); ok && raw != "" {
			idToken, err := p.verifier.Verify(ctx, raw)
			switch {
			case err != nil:
				// Keys that cannot be fetched, a clock ahead: not the
				// user's fault. The login goes on with the ID token it had.
				o.logger.Warn("the ID token of a token refresh does not verify; the previous one is kept", zap.Error(err))
				fresh.IDToken = t.IDToken
			case idToken.Subject != t.Sub:
				// OpenID Connect Core 1.0, section 12.2: it must name the
				// same user.
				return nil, errRefreshedIDToken
			}
		}
		if t.SID != "" && o.cfg.BackChannelLogoutPath != "" {
			o.linkSID(ctx, t.SID, t.Sub) // the link lives as long as the login is used
		}
		return fresh, nil
	})
	var refused *oauth2.RetrieveError
	switch {
	case err == nil:
		raw, _ := json.Marshal(fresh)
		if err := o.sessions.SavePrivate(r.Context(), s, oidcPrivate, raw); err != nil {
			// Saved with the response instead: a store that evicted the
			// session writes it back with these tokens, not the used
			// ones; one that deleted it never brings it back.
			_ = keepTokens(s, fresh)
		}
		metrics.oidcRefreshes.inc("refreshed")
		return fresh
	case errors.Is(err, errRefreshedIDToken):
		o.logger.Warn("a token refresh returned an ID token for another user; the login ends")
		return o.endLogin(s)
	case errors.As(err, &refused) && refused.ErrorCode == "invalid_grant":
		// Another instance may have redeemed it first, with a provider
		// that rotates refresh tokens: what the store holds now says.
		stored, storeErr := o.storedTokens(r.Context(), s.ID())
		switch {
		case storeErr != nil:
			metrics.oidcRefreshes.inc("failed")
			o.logger.Warn("a token refresh was refused and the store cannot tell whether another request refreshed first; tried again later", zap.Error(storeErr))
			return t
		case stored != nil && stored.RefreshToken != t.RefreshToken && stored.Sub == t.Sub:
			metrics.oidcRefreshes.inc("superseded")
			return stored
		}
		o.logger.Info("the provider refused to refresh the login's tokens (invalid_grant); the login ends")
		return o.endLogin(s)
	case errors.As(err, &refused):
		// invalid_client (a rotated client secret), 429, a 5xx: the
		// gateway's or the provider's trouble, not the user's.
		metrics.oidcRefreshes.inc("failed")
		status := 0
		if refused.Response != nil {
			status = refused.Response.StatusCode
		}
		o.logger.Error("the provider refused to refresh tokens; tried again later", zap.Int("status", status), zap.String("error", sessioncore.HeaderSafe(refused.ErrorCode)))
		return t
	default:
		metrics.oidcRefreshes.inc("failed")
		if !errors.Is(err, errRecentlyFailed) {
			o.logger.Warn("token refresh failed; tried again later", zap.Error(err))
		}
		return t
	}
}

// errRefreshedIDToken means a refresh returned an ID token for another user.
var errRefreshedIDToken = errors.New("the refreshed ID token names another user")

// endLogin clears s: the provider will not refresh its login.
func (o *oidcLogin) endLogin(s *sessioncore.Session) *oidcTokens {
	metrics.oidcRefreshes.inc("refused")
	_ = s.Clear()
	return nil
}

// storedTokens returns the tokens the store holds now for the session id;
// nil when it holds none.
func (o *oidcLogin) storedTokens(ctx context.Context, id string) (*oidcTokens, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	values, found, err := sessioncore.LoadFresh(ctx, o.store, id) // another gateway's save, not a cached copy
	if err != nil || !found {
		return nil, err
	}
	raw, ok := values[sessioncore.PrivatePrefix+oidcPrivate]
	if !ok {
		return nil, nil
	}
	return parseTokens(raw), nil
}

// refresher redeems each refresh token once per instance: requests of one
// session that find its access token due together share one refresh, and
// a request that still holds the old refresh token just after gets the
// result (providers that rotate refresh tokens refuse a second use). A
// refresh that failed is not tried again for a few seconds, and while the
// provider cannot be reached no refresh is tried at all, so that a
// provider that is down holds one request for its timeout, not all.
type refresher struct {
	flights singleflight.Group

	mu        sync.Mutex
	recent    map[string]redeemed // by the SHA-256 of the refresh token and its login
	downUntil time.Time           // no refresh before, after a provider unreachable
}

type redeemed struct {
	tokens *oidcTokens // nil: the refresh failed
	at     time.Time
}

const (
	// redeemedFor is how long a redeemed refresh token's result is handed
	// to requests that still hold it, while the result is not due itself
	// (a provider that does not rotate refresh tokens hands the same one
	// back).
	redeemedFor = time.Minute
	// failedFor is how long a failed refresh is not tried again.
	failedFor = 5 * time.Second
	// maxRedeemed bounds the results kept.
	maxRedeemed = 10_000
)

// errRecentlyFailed answers a refresh asked again soon after it failed.
var errRecentlyFailed = errors.New("the refresh failed moments ago; not tried again yet")

// redeem returns the tokens that t's refresh token redeems for, through
// exchange, once for all the requests that hold it.
func (rf *refresher) redeem(t *oidcTokens, exchange func(context.Context) (*oidcTokens, error)) (*oidcTokens, error) {
	// The login is part of the key: a provider that handed one refresh
	// token to two logins must not have one's sid stamped on the other.
	sum := sha256.Sum256([]byte(t.RefreshToken + "\x00" + t.Sub + "\x00" + t.SID))
	key := string(sum[:])
	now := time.Now()
	rf.mu.Lock()
	r, ok := rf.recent[key]
	down := now.Before(rf.downUntil)
	rf.mu.Unlock()
	switch {
	case down, ok && r.tokens == nil && now.Sub(r.at) < failedFor:
		return nil, errRecentlyFailed
	case ok && r.tokens != nil && now.Sub(r.at) < redeemedFor && !r.tokens.due(now):
		return r.tokens, nil
	}
	v, err, _ := rf.flights.Do(key, func() (any, error) {
		// Not the first request's context: the others wait on it too.
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		tokens, err := exchange(ctx)
		var refused *oauth2.RetrieveError
		switch {
		case errors.As(err, &refused) && refused.ErrorCode == "invalid_grant", errors.Is(err, errRefreshedIDToken):
			// Final: the login ends; nothing to hold back.
		case err != nil && !errors.As(err, &refused):
			// The provider cannot be reached: no refresh for a while.
			rf.mu.Lock()
			rf.downUntil = time.Now().Add(failedFor)
			rf.mu.Unlock()
			rf.remember(key, nil, time.Now())
		default:
			rf.remember(key, tokens, time.Now())
		}
		return tokens, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*oidcTokens), nil
}

func (rf *refresher) remember(key string, tokens *oidcTokens, now time.Time) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.recent == nil {
		rf.recent = map[string]redeemed{}
	}
	if len(rf.recent) >= maxRedeemed {
		for k, r := range rf.recent {
			if now.Sub(r.at) >= redeemedFor {
				delete(rf.recent, k)
			}
		}
		for k := range rf.recent { // still full: any one goes
			if len(rf.recent) < maxRedeemed {
				break
			}
			delete(rf.recent, k)
		}
	}
	rf.recent[key] = redeemed{tokens, now}
}

// The provider's session IDs (sid), for back-channel logout by sid alone:
// each login with a sid leaves a link, sid to user, in the store, as a
// record of its own under an ID derived from the sid with a key only the
// gateway holds; it holds no session values, and only a cookie signed with
// the session secret could name it (it would open as an empty session).

// sidLinkField is the link's one field.
const sidLinkField = sessioncore.PrivatePrefix + "oidc_sid"

// sidLink is what a link holds: the user, base64url, so that the value
// is ASCII whatever the sub.
type sidLink struct {
	Sub string `json:"sub_b64"`
}

// sidLinkID is the store ID of the link of sid.
func (o *oidcLogin) sidLinkID(sid string) string {
	mac := hmac.New(sha256.New, o.linkKey)
	mac.Write([]byte(o.cfg.Issuer + "\x00" + sid))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// linkSID records that the provider's session sid is user's, for a
// session lifetime from now; a failure is logged, and a logout by that
// sid alone will not find the user.
func (o *oidcLogin) linkSID(ctx context.Context, sid, user string) {
	value, _ := json.Marshal(sidLink{base64.RawURLEncoding.EncodeToString([]byte(user))})
	_, err := o.store.Commit(ctx, o.sidLinkID(sid), sessioncore.Changes{
		Create: true, Clear: true, Set: map[string]json.RawMessage{sidLinkField: value},
	}, o.lifetime)
	if err != nil {
		o.logger.Warn("the provider's session ID could not be linked to its user", zap.Error(err))
	}
}

// sidUser returns the user whose provider session sid is; "" when no link
// is known (it expired or was evicted, or the login was not through this
// gateway).
func (o *oidcLogin) sidUser(ctx context.Context, sid string) (string, error) {
	values, found, err := sessioncore.LoadFresh(ctx, o.store, o.sidLinkID(sid))
	if err != nil || !found {
		return "", err
	}
	var link sidLink
	_ = json.Unmarshal(values[sidLinkField], &link)
	user, err := base64.RawURLEncoding.DecodeString(link.Sub)
	if err != nil {
		return "", nil
	}
	return string(user), nil
}

// keepLoginTokens keeps a new login's tokens in the session, and links
// the provider's session ID to the user for back-channel logout.
func (o *oidcLogin) keepLoginTokens(ctx context.Context, s *sessioncore.Session, token *oauth2.Token, issued time.Time, idToken *oidc.IDToken, claims map[string]json.RawMessage) error {
	t := newTokens(token, issued, nil)
	t.Sub = idToken.Subject
	_ = json.Unmarshal(claims["sid"], &t.SID)
	if err := keepTokens(s, t); err != nil {
		return err
	}
	if t.SID != "" && o.cfg.BackChannelLogoutPath != "" {
		o.linkSID(ctx, t.SID, t.Sub)
	}
	return nil
}
