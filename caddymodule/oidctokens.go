package caddymodule

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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

// ownsTokens reports whether s still names the user t was issued to,
// when the sub claim is mapped to a session key.
func (o *oidcLogin) ownsTokens(s *sessioncore.Session, t *oidcTokens) bool {
	subKey, ok := o.claims["sub"]
	if !ok {
		return true
	}
	user, ok := s.Text(subKey)
	return ok && user == t.Sub
}

// onOpen runs on every request whose session is open, before it is handed
// upstream: it refreshes an access token about to expire and forwards it.
// A refresh the provider refuses ends the login: the session is cleared,
// as by a logout, and the request goes on without it.
func (o *oidcLogin) onOpen(r *http.Request, s *sessioncore.Session) {
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
		if t = o.refresh(r, s, t); t == nil {
			return
		}
		forward = o.parsed.forwardValue(t)
	}
	if o.forwardHeader != "" && t.AccessToken != "" && !t.expired(time.Now()) {
		r.Header[o.forwardHeader] = []string{forward} // canonical since provisioning
	}
}

// refresh redeems t's refresh token and keeps the new tokens in s. It
// returns the tokens to use: the new ones, the old ones when the provider
// could not be reached, or nil when the login ended.
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
		if raw, ok := token.Extra("id_token").(string); ok && raw != "" {
			if err := o.checkRefreshedIDToken(ctx, p, raw, t.Sub); err != nil {
				return nil, fmt.Errorf("%w: %w", errRefreshedIDToken, err)
			}
		}
		return newTokens(token, issued, t), nil
	})
	var refused *oauth2.RetrieveError
	switch {
	case errors.Is(err, errRefreshedIDToken):
		o.logger.Warn("the provider refreshed the login with an ID token that does not verify; the login ends", zap.Error(err))
		return o.endLogin(s, "refused")
	case err == nil:
		t = fresh
		if err := keepTokens(s, t); err != nil {
			metrics.oidcRefreshes.inc("failed")
			return t
		}
		metrics.oidcRefreshes.inc("refreshed")
		return t
	case errors.As(err, &refused) && refused.Response != nil && refused.Response.StatusCode < 500:
		// Another instance may have redeemed it first, with a provider
		// that rotates refresh tokens: what the store holds now says.
		if stored := o.storedTokens(r.Context(), s.ID()); stored != nil && stored.RefreshToken != t.RefreshToken && stored.Sub == t.Sub {
			metrics.oidcRefreshes.inc("superseded")
			_ = keepTokens(s, stored)
			return stored
		}
		o.logger.Info("the provider refused to refresh the login's tokens; the login ends", zap.String("error", sessioncore.HeaderSafe(refused.ErrorCode)))
		return o.endLogin(s, "refused")
	default:
		metrics.oidcRefreshes.inc("failed")
		o.logger.Warn("token refresh failed; tried again on the next request", zap.Error(err))
		return t
	}
}

// errRefreshedIDToken wraps why an ID token a refresh returned was refused.
var errRefreshedIDToken = errors.New("refreshed ID token refused")

// checkRefreshedIDToken verifies an ID token a refresh returned: the same
// issuer, audience, expiry and signature checks as at login, and the same
// user (OpenID Connect Core 1.0, section 12.2).
func (o *oidcLogin) checkRefreshedIDToken(ctx context.Context, p *discoveredProvider, raw, sub string) error {
	idToken, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return err
	}
	if idToken.Subject != sub {
		return errors.New("the refreshed ID token names another user")
	}
	return nil
}

// endLogin clears s, counting why.
func (o *oidcLogin) endLogin(s *sessioncore.Session, result string) *oidcTokens {
	metrics.oidcRefreshes.inc(result)
	_ = s.Clear()
	return nil
}

// storedTokens returns the tokens the store holds now for the session id.
func (o *oidcLogin) storedTokens(ctx context.Context, id string) *oidcTokens {
	if o.store == nil || id == "" {
		return nil
	}
	values, found, err := o.store.Load(ctx, id)
	if err != nil || !found {
		return nil
	}
	raw, ok := values[sessioncore.PrivatePrefix+oidcPrivate]
	if !ok {
		return nil
	}
	return parseTokens(raw)
}

// refresher redeems each refresh token once per gateway: requests of one
// session that find its access token expiring together share one refresh,
// and a request that still holds the old refresh token just after gets
// the result (providers that rotate refresh tokens refuse a second use).
type refresher struct {
	flights singleflight.Group

	mu     sync.Mutex
	recent map[string]redeemed // by the refresh token's SHA-256
}

type redeemed struct {
	tokens *oidcTokens
	at     time.Time
}

// redeemedFor is how long a redeemed refresh token's result is handed to
// requests that still hold it, while the result is not due itself (a
// provider that does not rotate refresh tokens hands the same one back).
const redeemedFor = time.Minute

// maxRedeemed bounds the results kept.
const maxRedeemed = 10_000

// redeem returns the tokens that t's refresh token redeems for, through
// exchange, once for all the requests that hold it.
func (rf *refresher) redeem(t *oidcTokens, exchange func(context.Context) (*oidcTokens, error)) (*oidcTokens, error) {
	sum := sha256.Sum256([]byte(t.RefreshToken))
	key := string(sum[:])
	now := time.Now()
	rf.mu.Lock()
	if r, ok := rf.recent[key]; ok && now.Sub(r.at) < redeemedFor && !r.tokens.due(now) {
		rf.mu.Unlock()
		return r.tokens, nil
	}
	rf.mu.Unlock()
	v, err, _ := rf.flights.Do(key, func() (any, error) {
		// Not the first request's context: the others wait on it too.
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		tokens, err := exchange(ctx)
		if err == nil {
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
	if rf.recent == nil || len(rf.recent) >= maxRedeemed {
		for k, r := range rf.recent {
			if now.Sub(r.at) >= redeemedFor {
				delete(rf.recent, k)
			}
		}
		if rf.recent == nil || len(rf.recent) >= maxRedeemed {
			rf.recent = map[string]redeemed{}
		}
	}
	rf.recent[key] = redeemed{tokens, now}
}

// The provider's session IDs (sid), for back-channel logout by sid alone:
// each login with a sid leaves a link, sid to user, in the store, as a
// record of its own under an ID derived from the sid with a key only the
// gateway holds, so no cookie can name it and it holds no session values.

// sidLinkField is the link's one field.
const sidLinkField = sessioncore.PrivatePrefix + "oidc_sid"

// sidLinkID is the store ID of the link of sid.
func (o *oidcLogin) sidLinkID(sid string) string {
	mac := hmac.New(sha256.New, o.linkKey)
	mac.Write([]byte(o.cfg.Issuer + "\x00" + sid))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// linkSID records that the provider's session sid is user's.
func (o *oidcLogin) linkSID(ctx context.Context, sid, user string) error {
	value, _ := json.Marshal(map[string]string{"sub": user})
	_, err := o.store.Commit(ctx, o.sidLinkID(sid), sessioncore.Changes{
		Create: true, Clear: true, Set: map[string]json.RawMessage{sidLinkField: value},
	}, o.lifetime)
	return err
}

// sidUser returns the user whose provider session sid is; "" when no link
// is known (it expired, or the login was not through this gateway).
func (o *oidcLogin) sidUser(ctx context.Context, sid string) (string, error) {
	values, found, err := o.store.Load(ctx, o.sidLinkID(sid))
	if err != nil || !found {
		return "", err
	}
	var link struct {
		Sub string `json:"sub"`
	}
	_ = json.Unmarshal(values[sidLinkField], &link)
	return link.Sub, nil
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
		if err := o.linkSID(ctx, t.SID, t.Sub); err != nil {
			// The login stands; a logout by this sid alone will not find it.
			o.logger.Warn("the provider's session ID could not be linked to the user", zap.Error(err))
		}
	}
	return nil
}
