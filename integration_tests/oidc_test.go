package integration_tests

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// provider is a real OpenID provider on loopback (oauth2-proxy's
// mockoidc: discovery, JWKS, authorization and token endpoints with PKCE),
// with two hooks a test sets: tamper rewrites the claims of the next ID
// tokens it issues (re-signed with signer), and its discovery document
// advertises an end_session_endpoint.
type provider struct {
	*mockoidc.MockOIDC
	mu     sync.Mutex
	tamper func(claims jwt.MapClaims)
	signer *mockoidc.Keypair // nil: the provider's own key
	// tokens, when set, edits each token response to the request r (its
	// form parsed), or refuses it by returning a status other than 200:
	// 400 with invalid_grant, anything else with invalid_client.
	tokens func(r *http.Request, body map[string]any) int
}

// setTokens sets the token hook; nil removes it.
func (p *provider) setTokens(f func(r *http.Request, body map[string]any) int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens = f
}

// startProvider starts a provider on ln (a fresh loopback port when nil).
func startProvider(t *testing.T, ln net.Listener) *provider {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{MockOIDC: m}
	if err := m.AddMiddleware(p.middleware); err != nil {
		t.Fatal(err)
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return p
}

// setTamper makes the provider rewrite its ID tokens' claims with f and
// sign them with signer (nil: its own key); f nil stops it.
func (p *provider) setTamper(f func(jwt.MapClaims), signer *mockoidc.Keypair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper, p.signer = f, signer
}

func (p *provider) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		tamper, signer, tokens := p.tamper, p.signer, p.tokens
		p.mu.Unlock()
		discovery := strings.HasSuffix(r.URL.Path, "/openid-configuration")
		if !discovery && (tamper == nil && tokens == nil || !strings.HasSuffix(r.URL.Path, "/token")) {
			next.ServeHTTP(w, r)
			return
		}
		_ = r.ParseForm() // the provider parses it again, from r.Form
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK {
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		if discovery {
			body["end_session_endpoint"] = p.Issuer() + "/logout"
		} else if raw, ok := body["id_token"].(string); ok && tamper != nil {
			body["id_token"] = p.resign(raw, tamper, signer)
		}
		if tokens != nil && !discovery {
			if status := tokens(r, body); status != http.StatusOK {
				code := "invalid_client"
				if status == http.StatusBadRequest {
					code = "invalid_grant"
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = fmt.Fprintf(w, `{"error":%q}`, code)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
}

// resign rewrites an ID token's claims and signs it again.
func (p *provider) resign(raw string, tamper func(jwt.MapClaims), signer *mockoidc.Keypair) string {
	parts := strings.Split(raw, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	claims := jwt.MapClaims{}
	_ = json.Unmarshal(payload, &claims)
	tamper(claims)
	if signer == nil {
		signer = p.Keypair
	}
	signed, err := signer.SignJWT(claims)
	if err != nil {
		panic(err)
	}
	return signed
}

// loginBrowser is an HTTP client that keeps cookies and follows redirects, as
// a browser does, except those to stopAt (a URL prefix) when set.
type loginBrowser struct {
	*http.Client
	stopAt string
}

func newBrowser(t *testing.T) *loginBrowser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &loginBrowser{}
	b.Client = &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if b.stopAt != "" && strings.HasPrefix(req.URL.String(), b.stopAt) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

func (b *loginBrowser) get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp, body.String()
}

// oidcGateway runs a gateway that logs users in against issuer, in front
// of an upstream that echoes the session.
func oidcGateway(t *testing.T, p *provider, issuer, sessionExtra, loginExtra string) *gateway {
	t.Helper()
	up := startUpstream(t, map[string]http.HandlerFunc{"/app": echoSession, "/app/page": echoSession,
		"/app/token": func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(r.Header.Get("Authorization"))) }})
	clientID, clientSecret := "gateway-client", "gateway-secret"
	if p != nil {
		clientID, clientSecret = p.ClientID, p.ClientSecret
	}
	t.Setenv("OIDC_CLIENT_SECRET", clientSecret) // as users should, out of the config
	return startGateway(t, up.Addr(), fmt.Sprintf(`
	session {
		secret 0123456789abcdef0123456789abcdef
		user_key uid
		login oidc {
			issuer %s
			client_id %s
			client_secret {env.OIDC_CLIENT_SECRET}
			post_logout_redirect http://127.0.0.1/bye
			claims {
				sub uid
				email email
			}
			%s
		}
		%s
	}
	@anonymous {
		not session uid
		path /app /app/*
	}
	redir @anonymous /_session/login?next={http.request.uri_escaped} 302
	reverse_proxy {upstream}`, issuer, clientID, loginExtra, sessionExtra))
}

// waitForLogin waits until the gateway has discovered its provider.
func waitForLogin(t *testing.T, gw *gateway) {
	t.Helper()
	b := newBrowser(t)
	b.stopAt = "http://127.0.0.1:" // any hop: only the first answer counts
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, _ := b.get(t, gw.URL+"/_session/login"); resp.StatusCode == http.StatusFound {
			return
		}
	}
	t.Fatal("the login never became available")
}

// startLogin starts a login in b and stops at the callback the provider
// sends it to, returning that URL unvisited.
func startLogin(t *testing.T, b *loginBrowser, gw *gateway, next string) string {
	t.Helper()
	b.stopAt = gw.URL + "/_session/callback"
	resp, _ := b.get(t, gw.URL+"/_session/login?next="+url.QueryEscape(next))
	b.stopAt = ""
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), gw.URL+"/_session/callback?") {
		t.Fatalf("the provider did not send the browser back: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return resp.Header.Get("Location")
}

func TestOIDCLoginFlow(t *testing.T) {
	p := startProvider(t, nil)
	gw := oidcGateway(t, p, p.Issuer(), "", "")
	waitForLogin(t, gw)

	// The whole flow, as a browser follows it: an anonymous visit is sent
	// to the login, the user lands on the page they asked for, and the
	// upstream sees the mapped claims.
	b := newBrowser(t)
	p.QueueUser(&mockoidc.MockUser{Subject: "alice-42", Email: "alice@example.com"})
	resp, body := b.get(t, gw.URL+"/app/page?x=1")
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/app/page" || resp.Request.URL.RawQuery != "x=1" {
		t.Fatalf("after the login: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	var session map[string]any
	if err := json.Unmarshal([]byte(body), &session); err != nil || session["uid"] != "alice-42" || session["email"] != "alice@example.com" {
		t.Fatalf("the upstream saw the session %s", body)
	}
	if _, ok := session["sub"]; ok {
		t.Errorf("an unmapped claim reached the session: %s", body)
	}
	gwURL, _ := url.Parse(gw.URL)
	var sessionID string
	for _, c := range b.Jar.Cookies(gwURL) {
		if strings.HasPrefix(c.Name, "session_login") {
			t.Errorf("the pre-login cookie outlived the login")
		}
		if c.Name == "session" {
			sessionID = c.Value
		}
	}

	// A second login renews the session: its cookie changes, and the new
	// user's claims replace the old ones.
	p.QueueUser(&mockoidc.MockUser{Subject: "bob-7"})
	_, body = b.get(t, gw.URL+"/_session/login?next=/app")
	session = nil
	if err := json.Unmarshal([]byte(body), &session); err != nil || session["uid"] != "bob-7" || session["email"] != nil {
		t.Fatalf("after the second login the upstream saw %s", body)
	}
	for _, c := range b.Jar.Cookies(gwURL) {
		if c.Name == "session" && c.Value == sessionID {
			t.Errorf("the session cookie was not reissued by the login")
		}
	}

	// Two tabs log in at once: each login has its own pre-login cookie, so
	// both finish.
	c1, c2 := startLogin(t, b, gw, "/app"), startLogin(t, b, gw, "/app/page")
	for _, callback := range []string{c1, c2} {
		if resp, body := b.get(t, callback); resp.StatusCode != 200 || !strings.Contains(body, `"uid"`) {
			t.Errorf("concurrent logins: %d %s", resp.StatusCode, body)
		}
	}

	// Another site cannot log the user out with a link.
	req, _ := http.NewRequest("GET", gw.URL+"/_session/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	b.stopAt = "http"
	if resp, err := b.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site logout: %v %v", resp.StatusCode, err)
	}
	b.stopAt = ""

	// Logout clears the session and goes through the provider's
	// end_session_endpoint (RP-initiated logout).
	b.stopAt = p.Issuer() + "/logout"
	resp, _ = b.get(t, gw.URL+"/_session/logout")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), p.Issuer()+"/logout?") ||
		loc.Query().Get("client_id") != p.ClientID || loc.Query().Get("post_logout_redirect_uri") != "http://127.0.0.1/bye" {
		t.Fatalf("logout: %d %q", resp.StatusCode, loc)
	}
	b.stopAt = gw.URL + "/_session/login"
	if resp, _ = b.get(t, gw.URL+"/app"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/_session/login?next=%2Fapp" {
		t.Errorf("after logout /app answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if strings.Contains(gw.Log(), sessionID) || strings.Contains(gw.Log(), "gateway-secret") || strings.Contains(gw.Log(), p.ClientSecret) {
		t.Errorf("a cookie value or a secret reached the log")
	}
}

func TestOIDCNextIsSameSiteOnly(t *testing.T) {
	p := startProvider(t, nil)
	gw := oidcGateway(t, p, p.Issuer(), "", "")
	waitForLogin(t, gw)
	for _, next := range []string{
		"//evil.example", "https://evil.example", "/\\evil.example", "\\\\evil.example",
		"/%2Fevil.example", "/%5Cevil.example", "%2F%2Fevil.example", "/%2f%2fevil.example",
		"http:evil.example", "javascript:alert(1)", "evil.example", "/\t/evil.example",
	} {
		b := newBrowser(t)
		callback := startLogin(t, b, gw, next)
		b.stopAt = "http" // stop at wherever the callback sends the browser
		resp, _ := b.get(t, callback)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
			t.Errorf("next %q: %d, sent to %q; want /", next, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestOIDCBadCallbacks(t *testing.T) {
	p := startProvider(t, nil)
	gw := oidcGateway(t, p, p.Issuer(), "", "")
	waitForLogin(t, gw)
	gwURL, _ := url.Parse(gw.URL)
	preLogin := func(b *loginBrowser) *http.Cookie {
		for _, c := range b.Jar.Cookies(&url.URL{Scheme: "http", Host: gwURL.Host, Path: "/_session/callback"}) {
			if strings.HasPrefix(c.Name, "session_login_") {
				return c
			}
		}
		t.Fatal("no pre-login cookie")
		return nil
	}
	// finish visits the callback without following the redirect after it.
	finish := func(b *loginBrowser, callback string) (*http.Response, string) {
		b.stopAt = "http"
		defer func() { b.stopAt = "" }()
		return b.get(t, callback)
	}
	expect := func(what string, resp *http.Response, body string, status int) {
		t.Helper()
		if resp.StatusCode != status {
			t.Errorf("%s: status %d, want %d (%s)", what, resp.StatusCode, status, body)
		}
		for _, c := range resp.Cookies() {
			if c.Name == "session" && c.MaxAge >= 0 {
				t.Errorf("%s: a session cookie was issued", what)
			}
		}
	}
	withState := func(callback, state string) string {
		u, _ := url.Parse(callback)
		q := u.Query()
		if state == "" {
			q.Del("state")
		} else {
			q.Set("state", state)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}

	t.Run("missing state", func(t *testing.T) {
		b := newBrowser(t)
		resp, body := finish(b, withState(startLogin(t, b, gw, "/app"), ""))
		expect("missing state", resp, body, http.StatusBadRequest)
	})
	t.Run("mismatched state", func(t *testing.T) {
		b := newBrowser(t)
		resp, body := finish(b, withState(startLogin(t, b, gw, "/app"), "not-the-state"))
		expect("mismatched state", resp, body, http.StatusBadRequest)
	})
	t.Run("replayed callback", func(t *testing.T) {
		b := newBrowser(t)
		callback := startLogin(t, b, gw, "/app")
		cookie := preLogin(b)
		if resp, _ := finish(b, callback); resp.StatusCode != http.StatusFound {
			t.Fatalf("the first callback: %d", resp.StatusCode)
		}
		// An attacker who captured the callback and the pre-login cookie.
		req, _ := http.NewRequest("GET", callback, nil)
		req.AddCookie(cookie)
		resp, body := do(t, req)
		expect("replayed callback", resp, body, http.StatusBadRequest)
	})
	t.Run("callback in another browser", func(t *testing.T) {
		b := newBrowser(t)
		callback := startLogin(t, b, gw, "/app")
		resp, body := finish(newBrowser(t), callback)
		expect("no pre-login cookie", resp, body, http.StatusBadRequest)
	})
	t.Run("tampered pre-login cookie", func(t *testing.T) {
		b := newBrowser(t)
		callback := startLogin(t, b, gw, "/app")
		cookie := preLogin(b)
		raw := []byte(cookie.Value)
		raw[len(raw)/2] ^= 1
		req, _ := http.NewRequest("GET", callback, nil)
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: string(raw)})
		resp, body := do(t, req)
		expect("tampered pre-login cookie", resp, body, http.StatusBadRequest)
	})
	t.Run("provider error", func(t *testing.T) {
		b := newBrowser(t)
		callback := startLogin(t, b, gw, "/app")
		u, _ := url.Parse(callback)
		q := u.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		u.RawQuery = q.Encode()
		resp, body := finish(b, u.String())
		expect("provider error", resp, body, http.StatusUnauthorized)
	})
	t.Run("wrong nonce", func(t *testing.T) {
		// The authorization request with another nonce: state and PKCE
		// hold, only the ID token's nonce is not this login's.
		b := newBrowser(t)
		b.stopAt = p.Issuer()
		resp, _ := b.get(t, gw.URL+"/_session/login?next=/app")
		authorize, _ := url.Parse(resp.Header.Get("Location"))
		q := authorize.Query()
		q.Set("nonce", "someone-elses")
		authorize.RawQuery = q.Encode()
		b.stopAt = gw.URL + "/_session/callback"
		resp, _ = b.get(t, authorize.String())
		resp, body := finish(b, resp.Header.Get("Location"))
		expect("wrong nonce", resp, body, http.StatusUnauthorized)
	})
	t.Run("code for another login", func(t *testing.T) {
		// The code of one login with the state and cookie of another:
		// the PKCE verifier does not match, and the provider refuses.
		b1, b2 := newBrowser(t), newBrowser(t)
		c1, c2 := startLogin(t, b1, gw, "/app"), startLogin(t, b2, gw, "/app")
		u1, _ := url.Parse(c1)
		u2, _ := url.Parse(c2)
		q := u2.Query()
		q.Set("code", u1.Query().Get("code"))
		u2.RawQuery = q.Encode()
		resp, body := finish(b2, u2.String())
		expect("code for another login", resp, body, http.StatusUnauthorized)
	})

	stranger, err := mockoidc.RandomKeypair(2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tamper func(jwt.MapClaims)
		signer *mockoidc.Keypair
	}{
		{"another audience", func(c jwt.MapClaims) { c["aud"] = "another-client" }, nil},
		{"another issuer", func(c jwt.MapClaims) { c["iss"] = "http://127.0.0.1:1/oidc" }, nil},
		{"expired", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, nil},
		{"unknown key", func(jwt.MapClaims) {}, stranger},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.setTamper(tc.tamper, tc.signer)
			defer p.setTamper(nil, nil)
			b := newBrowser(t)
			resp, body := finish(b, startLogin(t, b, gw, "/app"))
			expect(tc.name, resp, body, http.StatusUnauthorized)
		})
	}

	// Every refusal was counted by reason.
	resp, body := get(t, gw.Admin+"/metrics", "")
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	for reason, want := range map[string]string{
		"state_mismatch": "2", "state_replayed": "1", "missing_prelogin": "1", "bad_prelogin": "1",
		"provider_error": "1", "nonce_mismatch": "1", "exchange_refused": "1", "id_token_invalid": "4",
	} {
		line := fmt.Sprintf(`caddy_session_oidc_login_failures_total{reason="%s"} %s`, reason, want)
		if !strings.Contains(body, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

func TestOIDCProviderUnreachable(t *testing.T) {
	// Caddy starts while the provider is down; the login answers 503
	// until discovery succeeds.
	port := freePort(t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d/oidc", port)
	gw := oidcGateway(t, nil, issuer, "", "")
	b := newBrowser(t)
	b.stopAt = "http"
	if resp, _ := b.get(t, gw.URL+"/_session/login?next=/app"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("login before discovery: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp, _ := b.get(t, gw.URL+"/"); resp.StatusCode != 200 {
		t.Errorf("the site itself: %d", resp.StatusCode)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	p := startProvider(t, ln)
	// The gateway was configured before the provider chose its client.
	p.ClientID, p.ClientSecret = "gateway-client", "gateway-secret"
	waitForLogin(t, gw)

	// The provider goes away between the login and its callback.
	b = newBrowser(t)
	callback := startLogin(t, b, gw, "/app")
	_ = p.Shutdown()
	b.stopAt = "http"
	if resp, body := b.get(t, callback); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("callback with the provider down: %d %s", resp.StatusCode, body)
	}
}

// TestOIDCExampleSiteValidates uncomments the OpenID Connect site of
// Caddyfile.example and validates it, so the commented block stays a
// working configuration. Validation provisions the handler; discovery runs
// in the background and does not hold it up.
func TestOIDCExampleSiteValidates(t *testing.T) {
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	_, block, found := strings.Cut(string(example), "# http://localhost:8100 {")
	if !found {
		t.Fatal("Caddyfile.example has no OpenID Connect site")
	}
	site := "http://localhost:8100 {"
	for line := range strings.SplitSeq(strings.TrimPrefix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "# ") {
			break
		}
		site += "\n" + strings.TrimPrefix(line, "# ")
	}
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte("{\n\tadmin off\n}\n"+site+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SESSION_SECRET", strings.Repeat("s", 32))
	t.Setenv("OIDC_CLIENT_SECRET", "client-secret")
	if out, ok := caddyCommand(t, "validate", "--config", path, "--adapter", "caddyfile"); !ok {
		t.Fatalf("the example's OpenID Connect site does not validate:\n%s\n%s", site, out)
	}
}

func TestOIDCBackChannelLogout(t *testing.T) {
	p := startProvider(t, nil)
	gw := oidcGateway(t, p, p.Issuer(), "revocation_store memory", "backchannel_logout_path /_session/backchannel")
	waitForLogin(t, gw)
	stranger, err := mockoidc.RandomKeypair(2048)
	if err != nil {
		t.Fatal(err)
	}
	// logoutToken is a logout token for sub as the provider would sign it,
	// changed by edit.
	jti := 0
	logoutToken := func(sub string, signer *mockoidc.Keypair, edit func(jwt.MapClaims)) string {
		jti++
		claims := jwt.MapClaims{
			"iss": p.Issuer(), "aud": p.ClientID, "sub": sub, "sid": "provider-session",
			"iat": time.Now().Unix(), "exp": time.Now().Add(2 * time.Minute).Unix(),
			"jti":    fmt.Sprintf("logout-%d", jti),
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
		}
		if edit != nil {
			edit(claims)
		}
		if signer == nil {
			signer = p.Keypair
		}
		token, err := signer.SignJWT(claims)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	post := func(token string) int {
		t.Helper()
		resp, err := http.PostForm(gw.URL+"/_session/backchannel", url.Values{"logout_token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("a back-channel answer without Cache-Control: no-store")
		}
		return resp.StatusCode
	}
	loggedIn := func(b *loginBrowser) bool {
		t.Helper()
		b.stopAt = gw.URL + "/_session/login"
		defer func() { b.stopAt = "" }()
		resp, _ := b.get(t, gw.URL+"/app")
		return resp.StatusCode == http.StatusOK
	}

	alice, bob := newBrowser(t), newBrowser(t)
	p.QueueUser(&mockoidc.MockUser{Subject: "alice-42"})
	alice.get(t, gw.URL+"/_session/login?next=/app")
	p.QueueUser(&mockoidc.MockUser{Subject: "bob-7"})
	bob.get(t, gw.URL+"/_session/login?next=/app")
	if !loggedIn(alice) || !loggedIn(bob) {
		t.Fatal("the logins did not take")
	}

	// Tokens that must not log anyone out.
	for _, tc := range []struct {
		name   string
		token  string
		status int
	}{
		{"unknown key", logoutToken("alice-42", stranger, nil), 400},
		{"another audience", logoutToken("alice-42", nil, func(c jwt.MapClaims) { c["aud"] = "another-client" }), 400},
		{"another issuer", logoutToken("alice-42", nil, func(c jwt.MapClaims) { c["iss"] = "http://127.0.0.1:1/oidc" }), 400},
		{"expired", logoutToken("alice-42", nil, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), 400},
		{"no logout event", logoutToken("alice-42", nil, func(c jwt.MapClaims) { delete(c, "events") }), 400},
		{"an ID token (nonce)", logoutToken("alice-42", nil, func(c jwt.MapClaims) { c["nonce"] = "n" }), 400},
		{"no jti", logoutToken("alice-42", nil, func(c jwt.MapClaims) { delete(c, "jti") }), 400},
		{"sid only", logoutToken("", nil, func(c jwt.MapClaims) { delete(c, "sub") }), 501},
		{"not a JWT", "garbage", 400},
		{"empty", "", 400},
	} {
		if status := post(tc.token); status != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, status, tc.status)
		}
	}
	if resp, err := http.Get(gw.URL + "/_session/backchannel"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET on the back-channel path: %v %v", resp.StatusCode, err)
	}
	if !loggedIn(alice) || !loggedIn(bob) {
		t.Fatal("a refused logout token logged someone out")
	}

	// A valid one logs alice out everywhere, and only alice; replayed, it
	// is refused.
	token := logoutToken("alice-42", nil, nil)
	if status := post(token); status != http.StatusOK {
		t.Fatalf("valid logout token: %d", status)
	}
	if loggedIn(alice) {
		t.Error("alice is still logged in after the back-channel logout")
	}
	if !loggedIn(bob) {
		t.Error("bob was logged out by alice's logout token")
	}
	if status := post(token); status != http.StatusBadRequest {
		t.Errorf("replayed logout token: %d", status)
	}
	// She logs in again, after the logout: the new session stands.
	time.Sleep(1100 * time.Millisecond) // the cutoff covers the second it was set in
	p.QueueUser(&mockoidc.MockUser{Subject: "alice-42"})
	alice.get(t, gw.URL+"/_session/login?next=/app")
	if !loggedIn(alice) {
		t.Error("alice cannot log in again after the back-channel logout")
	}
	_, body := get(t, gw.Admin+"/metrics", "")
	for _, line := range []string{
		`caddy_session_oidc_backchannel_logouts_total{result="revoked"} 1`,
		`caddy_session_oidc_backchannel_logouts_total{result="rejected"} 11`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

// TestOIDCRedirectURL: behind a proxy that ends TLS, the provider is given
// the configured redirect_url, not one made from the request, and the
// callback is served at its path.
func TestOIDCRedirectURL(t *testing.T) {
	p := startProvider(t, nil)
	gw := oidcGateway(t, p, p.Issuer(), "", "redirect_url https://app.example.com/auth/cb")
	waitForLogin(t, gw)
	b := newBrowser(t)
	b.stopAt = "https://app.example.com/"
	p.QueueUser(&mockoidc.MockUser{Subject: "carol-3"})
	resp, _ := b.get(t, gw.URL+"/_session/login?next=/app")
	back, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || back.Host != "app.example.com" || back.Path != "/auth/cb" {
		t.Fatalf("the provider sent the browser to %q (%d)", back, resp.StatusCode)
	}
	// The TLS-ending proxy hands the callback on to Caddy.
	b.stopAt = ""
	resp, body := b.get(t, gw.URL+back.RequestURI())
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/app" || !strings.Contains(body, `"uid":"carol-3"`) {
		t.Errorf("after the callback: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
}
