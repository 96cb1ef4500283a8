package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sessiongate/caddy-session/sessioncore"
)

func TestRefreshAt(t *testing.T) {
	issued := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		life, want time.Duration
	}{
		{time.Hour, 59 * time.Minute},        // a minute before expiry
		{5 * time.Minute, 4 * time.Minute},   // likewise
		{2 * time.Minute, time.Minute},       // both rules agree
		{90 * time.Second, 45 * time.Second}, // half-way through a short life
		{2 * time.Second, time.Second},
	} {
		if got := refreshAt(issued, issued.Add(tc.life)).Sub(issued); got != tc.want {
			t.Errorf("life %s: refresh after %s, want %s", tc.life, got, tc.want)
		}
	}
	if !refreshAt(issued, time.Time{}).IsZero() {
		t.Error("a token without expiry is given a refresh time")
	}
	never := &oidcTokens{RefreshToken: "r"}
	if never.due(issued.Add(1000*time.Hour)) || never.expired(issued.Add(1000*time.Hour)) {
		t.Error("a token without expiry is due or expired")
	}
}

func TestNewTokensKeepWhatARefreshOmits(t *testing.T) {
	issued := time.Now()
	previous := &oidcTokens{Sub: "alice", SID: "ps", RefreshToken: "r1", IDToken: "id1"}
	token := (&oauth2.Token{AccessToken: "a2", TokenType: "bearer", Expiry: issued.Add(time.Hour)}).WithExtra(map[string]any{})
	got := newTokens(token, issued, previous)
	if got.Sub != "alice" || got.SID != "ps" || got.RefreshToken != "r1" || got.IDToken != "id1" || got.AccessToken != "a2" || got.TokenType != "Bearer" {
		t.Errorf("refreshed tokens %+v", got)
	}
	rotated := (&oauth2.Token{AccessToken: "a3", RefreshToken: "r2"}).WithExtra(map[string]any{"id_token": "id2"})
	if got := newTokens(rotated, issued, previous); got.RefreshToken != "r2" || got.IDToken != "id2" || !got.RefreshAt.IsZero() {
		t.Errorf("rotated tokens %+v", got)
	}
}

// A refresh token is redeemed once for all the requests that hold it at
// once, and its result handed to those that come just after, while the
// result is not due itself.
func TestRefresherRedeemsOnce(t *testing.T) {
	var rf refresher
	var calls atomic.Int32
	release := make(chan struct{})
	exchange := func(ctx context.Context) (*oidcTokens, error) {
		calls.Add(1)
		<-release
		return &oidcTokens{AccessToken: "a2", RefreshToken: "r1", Expiry: time.Now().Add(time.Hour), RefreshAt: time.Now().Add(59 * time.Minute)}, nil
	}
	held := &oidcTokens{RefreshToken: "r1"}
	var wg sync.WaitGroup
	results := make([]*oidcTokens, 8)
	for i := range results {
		wg.Go(func() {
			var err error
			if results[i], err = rf.redeem(held, exchange); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let them all join the flight
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("%d exchanges for one refresh token held by 8 requests", calls.Load())
	}
	for _, r := range results {
		if r == nil || r.AccessToken != "a2" {
			t.Fatalf("a request got %+v", r)
		}
	}
	// Just after: the result, without another exchange.
	if r, _ := rf.redeem(held, exchange); r.AccessToken != "a2" || calls.Load() != 1 {
		t.Errorf("a late request exchanged again (%d)", calls.Load())
	}

	// A result that is due itself (a provider that hands the same refresh
	// token back, with a short-lived access token) is not reused.
	var short refresher
	calls.Store(0)
	due := func(ctx context.Context) (*oidcTokens, error) {
		calls.Add(1)
		return &oidcTokens{AccessToken: "a", RefreshToken: "r1", RefreshAt: time.Now().Add(-time.Second)}, nil
	}
	_, _ = short.redeem(held, due)
	_, _ = short.redeem(held, due)
	if calls.Load() != 2 {
		t.Errorf("a due result was reused: %d exchanges", calls.Load())
	}

	// A failure holds further tries back for a few seconds, so that a
	// provider that is down does not hold every request for its timeout.
	var failing refresher
	calls.Store(0)
	fail := func(ctx context.Context) (*oidcTokens, error) { calls.Add(1); return nil, errors.New("down") }
	_, err1 := failing.redeem(held, fail)
	_, err2 := failing.redeem(held, fail)
	if err1 == nil || !errors.Is(err2, errRecentlyFailed) || calls.Load() != 1 {
		t.Errorf("failures: %v, then %v, after %d exchanges", err1, err2, calls.Load())
	}
	// An unreachable provider holds back every session's refresh.
	if _, err := failing.redeem(&oidcTokens{RefreshToken: "another login's"}, fail); !errors.Is(err, errRecentlyFailed) || calls.Load() != 1 {
		t.Errorf("another session's refresh while the provider is down: %v after %d exchanges", err, calls.Load())
	}
	// A refusal (invalid_grant) is final, and not held back: the next
	// request learns it from the provider again.
	var refusing refresher
	calls.Store(0)
	refuse := func(ctx context.Context) (*oidcTokens, error) {
		calls.Add(1)
		return nil, &oauth2.RetrieveError{ErrorCode: "invalid_grant"}
	}
	_, _ = refusing.redeem(held, refuse)
	if _, err := refusing.redeem(held, refuse); errors.Is(err, errRecentlyFailed) || calls.Load() != 2 {
		t.Errorf("a refusal was held back: %v after %d exchanges", err, calls.Load())
	}
}

// Tokens belong to the user they were issued to: a session an upstream
// gave to another user loses them, and forwards none.
func TestTokensFollowTheirUser(t *testing.T) {
	o := &oidcLogin{cfg: &OIDCLogin{}, cookiePath: DefaultOIDCRedirectPath, claims: map[string]string{"sub": "uid"}, forwardHeader: "Authorization", parsed: parsedTokens{bearer: true}}
	s := sessioncore.NewSession()
	_ = s.Set("uid", json.RawMessage(`"bob"`))
	_ = keepTokens(s, &oidcTokens{Sub: "alice", AccessToken: "alice-token"})
	r := httptest.NewRequest("GET", "/app", nil)
	o.onOpen(r, s)
	if r.Header.Get("Authorization") != "" {
		t.Error("alice's token was forwarded for bob")
	}
	if _, ok := s.Private(oidcPrivate); ok {
		t.Error("alice's tokens stayed in bob's session")
	}

	_ = s.Set("uid", json.RawMessage(`"alice"`))
	_ = keepTokens(s, &oidcTokens{Sub: "alice", AccessToken: "alice-token", Expiry: time.Now().Add(time.Hour)})
	o.onOpen(r, s)
	if got := r.Header.Get("Authorization"); got != "Bearer alice-token" {
		t.Errorf("Authorization %q", got)
	}
	// An expired access token, with no refresh token, is not forwarded.
	r = httptest.NewRequest("GET", "/app", nil)
	_ = keepTokens(s, &oidcTokens{Sub: "alice", AccessToken: "old", Expiry: time.Now().Add(-time.Second)})
	o.onOpen(r, s)
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("an expired token was forwarded: %q", got)
	}
}

// oneSessionStore answers every load with one session's values, or fails.
type oneSessionStore struct {
	sessioncore.Store
	values map[string]json.RawMessage
	err    error
}

func (f oneSessionStore) Load(context.Context, string) (map[string]json.RawMessage, bool, error) {
	return f.values, f.values != nil, f.err
}

// Before redeeming a refresh token that is due, the gateway asks the store
// whether another request or gateway refreshed it meanwhile (this
// request's copy may lag behind a client-side cache): it then uses those
// tokens rather than reuse a rotated refresh token.
func TestRefreshedElsewhere(t *testing.T) {
	due := &oidcTokens{Sub: "alice", AccessToken: "a1", RefreshToken: "r1", Expiry: time.Now().Add(10 * time.Second), RefreshAt: time.Now().Add(-time.Second)}
	stored := func(tokens *oidcTokens) map[string]json.RawMessage {
		raw, _ := json.Marshal(tokens)
		return map[string]json.RawMessage{"uid": json.RawMessage(`"alice"`), sessioncore.PrivatePrefix + oidcPrivate: raw}
	}
	fresh := &oidcTokens{Sub: "alice", AccessToken: "a2", RefreshToken: "r2", Expiry: time.Now().Add(time.Hour), RefreshAt: time.Now().Add(59 * time.Minute)}
	for _, tc := range []struct {
		name  string
		store oneSessionStore
		want  string // the access token used; "" for none (refresh)
	}{
		{"refreshed elsewhere", oneSessionStore{values: stored(fresh)}, "a2"},
		{"the same refresh token", oneSessionStore{values: stored(due)}, ""},
		{"another user's", oneSessionStore{values: stored(&oidcTokens{Sub: "bob", RefreshToken: "r2", Expiry: fresh.Expiry, RefreshAt: fresh.RefreshAt})}, ""},
		{"due as well", oneSessionStore{values: stored(&oidcTokens{Sub: "alice", RefreshToken: "r2", Expiry: due.Expiry, RefreshAt: due.RefreshAt})}, ""},
		{"gone", oneSessionStore{}, ""},
		{"the store fails", oneSessionStore{err: sessioncore.ErrStore}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &oidcLogin{store: tc.store}
			got := o.refreshedElsewhere(context.Background(), sessioncore.NewSession(), due)
			switch {
			case tc.want == "" && got != nil:
				t.Errorf("used %q instead of refreshing", got.AccessToken)
			case tc.want != "" && (got == nil || got.AccessToken != tc.want):
				t.Errorf("got %+v, want the tokens with %q", got, tc.want)
			}
		})
	}
	if (&oidcLogin{}).refreshedElsewhere(context.Background(), sessioncore.NewSession(), due) != nil {
		t.Error("cookie mode (no store) found tokens")
	}
}
