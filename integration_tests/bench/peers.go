package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oauth2-proxy/mockoidc"
)

// The peers suite: what a user would run instead of the gateway's edge
// gate, each in front of the same upstream with a valid, authenticated
// session, gate against gate:
//
//   - oauth2-proxy, built from the Go module proxy, its session minted by a
//     real login against a local OpenID provider (oauth2-proxy's own
//     mockoidc), cookie session store, cookie refresh off; it forwards
//     X-Forwarded-User and X-Forwarded-Email;
//   - caddy-security's authorize with a JWT cookie, when its binary is
//     given (-caddy-security), forwarding two injected headers;
//   - the gateway's gate (two forward lines, respond 401 to anonymous),
//     with its default codec, with codec flask, and with its Redis store;
//     it forwards X-Remote-User, X-Remote-Role and the whole session in
//     X-Session.
//
// Each runs with GOMAXPROCS=1 on core 0, as Caddy does.

// peerBinaries are the peers' programs; "" leaves a peer out.
type peerBinaries struct {
	oauth2Proxy, caddySecurity string
}

// peerConfigs are the peers other than the gateway: oauth2-proxy (built
// into dir unless given) against a provider it starts, and caddy-security
// when given; stop stops the provider.
func peerConfigs(dir string) (configs []*config, stop func(), err error) {
	binary := peers.oauth2Proxy
	if binary == "" {
		fmt.Println("building oauth2-proxy v7.15.6...")
		build := exec.Command("go", "install", "github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6")
		build.Env = append(os.Environ(), "GOBIN="+dir)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, nil, fmt.Errorf("building oauth2-proxy: %w", err)
		}
		binary = filepath.Join(dir, "oauth2-proxy")
	}
	m, err := mockoidc.Run()
	if err != nil {
		return nil, nil, err
	}
	configs = []*config{oauth2ProxyConfig(binary, m, 1), oauth2ProxyConfig(binary, m, 4096)}
	if peers.caddySecurity != "" {
		configs = append(configs, caddySecurityConfig(peers.caddySecurity, dir, 1), caddySecurityConfig(peers.caddySecurity, dir, 4096))
	} else {
		fmt.Println("no -caddy-security binary: leaving caddy-security out")
	}
	return configs, func() { _ = m.Shutdown() }, nil
}

// oauth2ProxyConfig is oauth2-proxy in front of the upstream, logging in
// against issuer.
func oauth2ProxyConfig(binary string, m *mockoidc.MockOIDC, distinct int) *config {
	name := "oauth2-proxy v7.15.6 (cookie sessions, no refresh)"
	if distinct > 1 {
		name = fmt.Sprintf("oauth2-proxy, %d sessions rotating", distinct)
	}
	return &config{
		name:     name,
		distinct: distinct,
		command: func(port int, upstream string) *exec.Cmd {
			return pinned(0, binary,
				"--http-address=127.0.0.1:"+strconv.Itoa(port),
				"--upstream=http://"+upstream+"/",
				"--provider=oidc",
				"--oidc-issuer-url="+m.Issuer(),
				"--client-id="+m.ClientID,
				"--client-secret="+m.ClientSecret,
				"--redirect-url=http://127.0.0.1:"+strconv.Itoa(port)+"/oauth2/callback",
				"--cookie-secret=0123456789abcdef0123456789abcdef",
				"--cookie-secure=false",
				"--cookie-refresh=0",
				"--session-store-type=cookie",
				"--email-domain=*",
				"--skip-provider-button=true",
				"--request-logging=false",
				"--auth-logging=false",
				"--standard-logging=false",
			)
		},
		logInOne: func(c *config) (string, error) {
			providerLogins.Lock() // mockoidc's session store is not safe for concurrent logins
			defer providerLogins.Unlock()
			return browserLogin(c.port, "/oauth2/start?rd=%2F", "_oauth2_proxy")
		},
	}
}

// providerLogins serializes the logins against the provider.
var providerLogins sync.Mutex

// browserLogin follows a login from start as a browser does and returns
// the Cookie header of the cookies whose names begin with prefix.
func browserLogin(port int, start, prefix string) (string, error) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	resp, err := client.Get(base + start)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login ended with %d at %s", resp.StatusCode, resp.Request.URL)
	}
	u, _ := url.Parse(base + "/")
	var pairs []string
	for _, c := range jar.Cookies(u) {
		if strings.HasPrefix(c.Name, prefix) && !strings.HasSuffix(c.Name, "_csrf") {
			pairs = append(pairs, c.Name+"="+c.Value)
		}
	}
	if len(pairs) == 0 {
		return "", fmt.Errorf("no %s cookie after the login", prefix)
	}
	return strings.Join(pairs, "; "), nil
}

// caddySecurityKey signs the JWTs caddy-security verifies (HS256).
const caddySecurityKey = "bench-caddy-security-key-0123456789abcdef"

// caddySecurityConfig is caddy-security's authorize in front of the
// upstream, with a JWT cookie (access_token) signed with a shared key.
func caddySecurityConfig(binary, dir string, distinct int) *config {
	name := "caddy-security authorize (JWT cookie)"
	if distinct > 1 {
		name = fmt.Sprintf("caddy-security, %d tokens rotating", distinct)
	}
	return &config{
		name:     name,
		distinct: distinct,
		command: func(port int, upstream string) *exec.Cmd {
			caddyfile := fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		level ERROR
	}
	order authorize before reverse_proxy
	security {
		authorization policy bench {
			set auth url /login
			crypto key verify %s
			allow roles authp/user
			inject header "X-Remote-User" from sub
			inject header "X-Remote-Email" from email
		}
	}
}

http://127.0.0.1:%d {
	authorize with bench
	reverse_proxy %s
}
`, caddySecurityKey, port, upstream)
			path := filepath.Join(dir, fmt.Sprintf("Caddyfile.security.%d", port))
			_ = os.WriteFile(path, []byte(caddyfile), 0o600)
			return pinned(0, binary, "run", "--config", path, "--adapter", "caddyfile")
		},
		logInOne: func(c *config) (string, error) { return "access_token=" + signedJWT(), nil },
	}
}

// signedJWT is an HS256 JWT as caddy-security's portal would issue it, for
// a fresh user each time.
func signedJWT() string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"sub": fmt.Sprintf("u-%d", now.UnixNano()), "email": "user@example.com", "roles": []string{"authp/user"},
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(24 * time.Hour).Unix(),
		"iss": "https://bench.example.com", "origin": "bench",
	})
	unsigned := header + "." + base64.RawURLEncoding.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(caddySecurityKey))
	mac.Write([]byte(unsigned))
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
