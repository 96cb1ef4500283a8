package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// nullWriter is a ResponseWriter that keeps only its header.
type nullWriter struct{ header http.Header }

func (w *nullWriter) Header() http.Header         { return w.header }
func (w *nullWriter) WriteHeader(int)             {}
func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkHandler measures the handler's own work per request, in front
// of an upstream that does nothing, beside "no session": the same request
// prepared as Caddy's server does, without the handler. The difference is
// what the gateway adds to every request: a 200-byte session read and not
// reissued, or a permanent one refreshed on every response.
func BenchmarkHandler(b *testing.B) {
	pad := strings.Repeat("x", 130)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, err := w.Write([]byte("hello from the upstream\n"))
		return err
	})
	forwardUser := func(h *Handler) { h.Forward = []ForwardHeader{{Key: "user_id", Header: "X-Remote-User"}} }
	forwardTwo := func(h *Handler) {
		h.Forward = []ForwardHeader{{Key: "user_id", Header: "X-Remote-User"}, {Key: "role", Header: "X-Remote-Role"}}
	}
	revocationMap := func(h *Handler) {
		h.UserKey = "user_id"
		h.RevocationStore = &RevocationStoreConfig{StoreConfig: StoreConfig{Type: storeMemory}}
	}
	keyFile := newAssertionKeyFile(b)
	signed := func(h *Handler) { h.SignUpstream = &SignUpstream{KeyFile: keyFile, Audience: "api"} }
	// A provider that answers discovery only, so that no retry runs in
	// the background: an ordinary request only checks its path against
	// the login's.
	issuer := discoveryOnlyProvider(b)
	oidcLogin := func(h *Handler) { h.Login = &Login{OIDC: &OIDCLogin{Issuer: issuer, ClientID: "c"}} }
	memoryStore := func(h *Handler) { h.Store = &StoreConfig{Type: storeMemory} }
	// A login's tokens kept in the store, the access token forwarded: the
	// sizes of a typical provider's JWTs.
	oidcTokensKept := func(h *Handler) {
		memoryStore(h)
		h.Login = &Login{OIDC: &OIDCLogin{Issuer: issuer, ClientID: "c", ForwardAccessToken: "Authorization", Claims: map[string]string{"sub": "user_id"}}}
	}
	for _, tc := range []struct {
		name, session string
		configure     func(*Handler)
	}{
		{"no session", "", nil},
		{"read", `{"role":"editor","user_id":"u-12345","pad":"` + pad + `"}`, nil},
		{"read, signed", `{"role":"editor","user_id":"u-12345","pad":"` + pad + `"}`, signed},
		{"read, forward user", `{"role":"editor","user_id":"u-12345","pad":"` + pad + `"}`, forwardUser},
		{"read, forward user and role", `{"role":"editor","user_id":"u-12345","pad":"` + pad + `"}`, forwardTwo},
		{"read, login oidc", `{"role":"editor","user_id":"u-12345","pad":"` + pad + `"}`, oidcLogin},
		{"read, revocation map", `{"role":"editor","user_id":"u-12345","pad":"` + pad + `"}`, revocationMap},
		{"refresh", `{"_permanent":true,"role":"editor","user_id":"u-12345","pad":"` + pad + `"}`, nil},
		{"read, memory store", `{"role":"editor","user_id":"u-12345","pad":"` + pad + `"}`, memoryStore},
		{"read, memory store, oidc tokens", `{"role":"editor","user_id":"u-12345","pad":"` + pad + `"}`, oidcTokensKept},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newTestHandler(b, tc.configure)
			h.logger = zap.NewNop() // Caddy's default level: no debug lines
			renewGateway(b, h)
			cookie := "theme=dark"
			if tc.session != "" {
				cookie += "; session=" + login(b, h, tc.session).Value
			}
			if h.oidc != nil && h.oidc.forwardHeader != "" {
				keepBenchTokens(b, h, cookie)
			}
			w := &nullWriter{header: http.Header{}}
			server := &caddyhttp.Server{}
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Cookie", cookie)
				r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, server)
				clear(w.header)
				var err error
				if tc.session == "" {
					err = next.ServeHTTP(w, r)
				} else {
					err = h.ServeHTTP(w, r, next)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// keepBenchTokens stores a login's tokens, of typical sizes, in the
// session of cookie, as a login would have.
func keepBenchTokens(b *testing.B, h *Handler, cookie string) {
	var id string
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", cookie)
	if _, err := serve(h, newRecorder(), r, func(w http.ResponseWriter, r *http.Request) error {
		id = r.Header.Get("X-Session-Id")
		return nil
	}); err != nil || id == "" {
		b.Fatalf("no session ID (%v)", err)
	}
	jwt := func(n int) string { return "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("a", n) + ".sig" }
	tokens, _ := json.Marshal(oidcTokens{
		Sub: "u-12345", SID: "provider-session", AccessToken: jwt(800), TokenType: "Bearer", RefreshToken: jwt(700),
		Expiry: time.Now().Add(time.Hour), RefreshAt: time.Now().Add(59 * time.Minute), IDToken: jwt(900),
	})
	changes := sessioncore.Changes{Set: map[string]json.RawMessage{sessioncore.PrivatePrefix + oidcPrivate: tokens}}
	if exists, err := h.store.Commit(context.Background(), id, changes, time.Hour); err != nil || !exists {
		b.Fatalf("storing the tokens: %v", err)
	}
}

// discoveryOnlyProvider serves an OpenID provider's discovery document and
// nothing else, and returns its issuer URL.
func discoveryOnlyProvider(b *testing.B) string {
	var issuer string
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": issuer, "authorization_endpoint": issuer + "/authorize", "token_endpoint": issuer + "/token",
			"jwks_uri": issuer + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	}))
	b.Cleanup(server.Close)
	issuer = server.URL
	return issuer
}
