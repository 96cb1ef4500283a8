package integration_tests

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/sessiongate/caddy-session/internal/redistest"
)

// jwtClaims returns the claims of a JWT, unverified: what the upstream or
// the provider would read.
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// In store modes the login's tokens stay server side: the access token is
// forwarded to the upstream and refreshed before it expires (once for
// concurrent requests), a refused refresh ends the login, the logout names
// the login to the provider with id_token_hint, and a back-channel logout
// by sid ends that provider session's sessions only.
func TestOIDCTokensInStore(t *testing.T) {
	server := redistest.Start(t)
	for name, store := range map[string]string{
		"memory": "store memory",
		"redis":  "store redis {\n\t\t\taddress " + server.Addr + "\n\t\t}",
	} {
		t.Run(name, func(t *testing.T) {
			p := startProvider(t, nil)
			gw := oidcGateway(t, p, p.Issuer(), store, "forward_access_token Authorization\n\t\t\tbackchannel_logout_path /_session/backchannel")
			waitForLogin(t, gw)
			testTokensInStore(t, p, gw)
		})
	}
}

func testTokensInStore(t *testing.T, p *provider, gw *gateway) {
	// Access tokens that live 2 s, refreshed after 1 s; a count of the
	// refresh grants the provider answers.
	var refreshes atomic.Int32
	var refuse atomic.Bool
	p.setTokens(func(r *http.Request, body map[string]any) int {
		if r.PostForm.Get("grant_type") == "refresh_token" {
			refreshes.Add(1)
			if refuse.Load() {
				// bob's login is over at the provider; the gateway's
				// client secret is refused for dave's.
				if jwtClaims(t, r.PostForm.Get("refresh_token"))["sub"] == "dave-9" {
					return http.StatusUnauthorized
				}
				return http.StatusBadRequest
			}
		}
		body["expires_in"] = 2
		return http.StatusOK
	})
	sid := "provider-session-1"
	var sidMu sync.Mutex
	p.setTamper(func(c jwt.MapClaims) {
		sidMu.Lock()
		defer sidMu.Unlock()
		c["sid"] = sid
	}, nil)
	setSID := func(s string) { sidMu.Lock(); sid = s; sidMu.Unlock() }
	t.Cleanup(func() { p.setTokens(nil); p.setTamper(nil, nil) })

	alice := newBrowser(t)
	p.QueueUser(&mockoidc.MockUser{Subject: "alice-42", Email: "alice@example.com"})
	if resp, body := alice.get(t, gw.URL+"/_session/login?next=/app"); resp.StatusCode != 200 || !strings.Contains(body, `"uid":"alice-42"`) {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	token := func(b *loginBrowser, forged string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", gw.URL+"/app/token", nil)
		if forged != "" {
			req.Header.Set("Authorization", forged)
		}
		// A client of its own on b's cookies, following no redirect: safe
		// to use from several goroutines at once.
		client := &http.Client{Jar: b.Jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body strings.Builder
		_, _ = io.Copy(&body, resp.Body)
		if resp.StatusCode != 200 {
			return "status " + resp.Status
		}
		return body.String()
	}

	// The upstream gets the access token, never the client's own header,
	// and the session it reads holds no token.
	first := token(alice, "Bearer forged")
	if !strings.HasPrefix(first, "Bearer ") || jwtClaims(t, strings.TrimPrefix(first, "Bearer "))["sub"] != "alice-42" {
		t.Fatalf("the upstream got Authorization %q", first)
	}
	if _, body := alice.get(t, gw.URL+"/app"); strings.Contains(body, "token") || strings.Contains(body, `\u0000`) || !strings.Contains(body, `"uid":"alice-42"`) {
		t.Errorf("X-Session shows the tokens: %s", body)
	}
	for _, c := range alice.Jar.Cookies(mustURL(t, gw.URL)) {
		if len(c.Value) > 200 {
			t.Errorf("cookie %s is %d bytes: tokens in the cookie?", c.Name, len(c.Value))
		}
	}

	// Past half its life the access token is refreshed, once for eight
	// requests at once.
	time.Sleep(1100 * time.Millisecond)
	before := refreshes.Load()
	var wg sync.WaitGroup
	seen := make([]string, 8)
	for i := range seen {
		wg.Go(func() { seen[i] = token(alice, "") })
	}
	wg.Wait()
	if n := refreshes.Load() - before; n != 1 {
		t.Errorf("%d refresh grants for 8 concurrent requests", n)
	}
	for _, s := range seen {
		if s != seen[0] || s == first || !strings.HasPrefix(s, "Bearer ") {
			t.Fatalf("after the refresh the upstream got %q (before: %q)", s, first)
		}
	}
	// The refreshed tokens were saved: the next request uses them as they are.
	if again := token(alice, ""); again != seen[0] {
		t.Errorf("the refreshed token was not kept: %q then %q", seen[0], again)
	}

	// The logout names the login to the provider.
	alice.stopAt = p.Issuer() + "/logout"
	resp, _ := alice.get(t, gw.URL+"/_session/logout")
	alice.stopAt = ""
	end, _ := url.Parse(resp.Header.Get("Location"))
	hint := end.Query().Get("id_token_hint")
	if resp.StatusCode != http.StatusFound || hint == "" || jwtClaims(t, hint)["sub"] != "alice-42" || !strings.Contains(fmt.Sprint(jwtClaims(t, hint)["aud"]), p.ClientID) {
		t.Fatalf("logout went to %q", end)
	}
	if got := token(alice, ""); !strings.HasPrefix(got, "status 302") {
		t.Errorf("after the logout: %q", got)
	}

	// A refresh the provider refuses with invalid_grant ends the login;
	// one refused for the gateway's own fault (invalid_client) does not.
	bob, dave := newBrowser(t), newBrowser(t)
	p.QueueUser(&mockoidc.MockUser{Subject: "bob-7"})
	bob.get(t, gw.URL+"/_session/login?next=/app")
	p.QueueUser(&mockoidc.MockUser{Subject: "dave-9"})
	dave.get(t, gw.URL+"/_session/login?next=/app")
	if got := token(bob, ""); !strings.HasPrefix(got, "Bearer ") {
		t.Fatalf("bob's token: %q", got)
	}
	refuse.Store(true)
	time.Sleep(1100 * time.Millisecond)
	if got := token(bob, ""); !strings.HasPrefix(got, "status 302") {
		t.Errorf("after a refused refresh bob still reaches the app: %q", got)
	}
	if got := token(dave, ""); strings.HasPrefix(got, "status") {
		t.Errorf("invalid_client ended dave's login: %q", got)
	}
	refuse.Store(false)
	p.setTokens(nil) // tokens that live long, from here on

	// Back-channel logout by sid: carol has two provider sessions; a
	// logout token with the first's sid alone ends hers on that one only.
	carol1, carol2 := newBrowser(t), newBrowser(t)
	setSID("carol-one")
	p.QueueUser(&mockoidc.MockUser{Subject: "carol-3"})
	carol1.get(t, gw.URL+"/_session/login?next=/app")
	setSID("carol-two")
	p.QueueUser(&mockoidc.MockUser{Subject: "carol-3"})
	carol2.get(t, gw.URL+"/_session/login?next=/app")
	loggedIn := func(b *loginBrowser) bool { return strings.HasPrefix(token(b, ""), "Bearer ") }
	if !loggedIn(carol1) || !loggedIn(carol2) {
		t.Fatal("carol's logins did not take")
	}
	post := func(claims jwt.MapClaims) int {
		t.Helper()
		base := jwt.MapClaims{
			"iss": p.Issuer(), "aud": p.ClientID, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
			"jti":    "logout-" + time.Now().Format(time.RFC3339Nano),
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
		}
		for k, v := range claims {
			base[k] = v
		}
		signed, err := p.Keypair.SignJWT(base)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.PostForm(gw.URL+"/_session/backchannel", url.Values{"logout_token": {signed}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := post(jwt.MapClaims{"sid": "unknown-session"}); status != 200 {
		t.Errorf("a sid this gateway never saw: %d", status)
	}
	if status := post(jwt.MapClaims{"sid": "carol-one"}); status != 200 {
		t.Fatalf("logout by sid: %d", status)
	}
	if loggedIn(carol1) || !loggedIn(carol2) {
		t.Errorf("after the logout of sid carol-one: first %v, second %v", loggedIn(carol1), loggedIn(carol2))
	}
	// With sub and sid, that sid's sessions of that user end.
	if status := post(jwt.MapClaims{"sub": "carol-3", "sid": "carol-two"}); status != 200 || loggedIn(carol2) {
		t.Errorf("logout by sub and sid: %d, still logged in: %v", status, loggedIn(carol2))
	}

	_, metricsText := get(t, gw.Admin+"/metrics", "")
	for _, line := range []string{
		`caddy_session_oidc_token_refreshes_total{result="refreshed"}`,
		`caddy_session_oidc_token_refreshes_total{result="refused"} 1`,
		`caddy_session_oidc_token_refreshes_total{result="failed"} 1`,
		`caddy_session_oidc_backchannel_logouts_total{result="revoked"} 3`,
	} {
		if !strings.Contains(metricsText, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
