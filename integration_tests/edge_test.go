package integration_tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEdgeAuthExample walks every recipe of the edge-auth site in
// Caddyfile.example, as shipped.
func TestEdgeAuthExample(t *testing.T) {
	_, edge := runExample(t)

	// Anonymous: /app/* redirects to the login, /api/* answers 401,
	// /admin/* 403; static files and the home page are public and do not
	// vary by cookie.
	resp, _ := get(t, edge.URL+"/app/reports?year=2026", "")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/login?next="+url.QueryEscape("/app/reports?year=2026") {
		t.Errorf("anonymous /app/: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := get(t, edge.URL+"/api/whoami", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous /api/: %d", resp.StatusCode)
	}
	if resp, _ := get(t, edge.URL+"/admin/", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous /admin/: %d", resp.StatusCode)
	}
	for _, path := range []string{"/static/site.css", "/"} {
		resp, _ := get(t, edge.URL+path, "")
		if resp.StatusCode != 200 || len(resp.Header.Values("Vary")) != 0 || len(resp.Header.Values("Set-Cookie")) != 0 {
			t.Errorf("public %s: %d Vary %q", path, resp.StatusCode, resp.Header.Values("Vary"))
		}
	}
	if resp, _ := get(t, edge.URL+"/static/site.css", ""); resp.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Errorf("static Cache-Control %q", resp.Header.Get("Cache-Control"))
	}

	// A user without a role reaches /app/ and /api/, not /admin/.
	resp, body := get(t, edge.URL+"/login?user=bob&next=/app/x", "")
	bob := sessionCookie(t, resp).Value
	if !strings.Contains(body, `href="/app/x"`) {
		t.Errorf("login page does not lead on to next: %s", body)
	}
	if _, body := get(t, edge.URL+"/app/x", bob); body != "app page for bob" {
		t.Errorf("bob /app/: %q", body)
	}
	if _, body := get(t, edge.URL+"/api/whoami", bob); body != `{"user":"bob"}` {
		t.Errorf("bob /api/: %q", body)
	}
	if resp, _ := get(t, edge.URL+"/admin/", bob); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob /admin/: %d", resp.StatusCode)
	}

	// An admin reaches /admin/; no client header can speak for the gateway.
	resp, _ = get(t, edge.URL+"/login?user=alice&role=admin", "")
	alice := sessionCookie(t, resp).Value
	_, body = get(t, edge.URL+"/admin/", alice, "X-Remote-User", "mallory", "X_Remote_Role", "root")
	if body != "admin area, alice (admin)" {
		t.Errorf("alice /admin/: %q", body)
	}
	if resp, _ := get(t, edge.URL+"/app/x", "", "X-Remote-User", "alice"); resp.StatusCode != http.StatusFound {
		t.Errorf("a spoofed X-Remote-User logged someone in: %d", resp.StatusCode)
	}

	// Unsafe cross-site requests are refused; same-origin ones pass.
	req, _ := http.NewRequest(http.MethodPost, edge.URL+"/api/things", nil)
	req.Header.Set("Cookie", "session="+alice)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := do(t, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d", resp.StatusCode)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if resp, _ := do(t, req); resp.StatusCode != http.StatusOK {
		t.Errorf("same-origin POST: %d", resp.StatusCode)
	}
}

func TestForwardedIdentityHeadersCannotBeSpoofed(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), `
	session {
		secret {env.IT_SESSION_SECRET}
		forward user X-Remote-User
	}
	reverse_proxy {upstream}
`)
	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp).Value

	spellings := []string{"X-Remote-User", "x-remote-user", "X-REMOTE-USER", "X_Remote_User", "x_remote_user", "X-Remote_User"}
	for _, cookie := range []string{"", login} {
		for _, name := range spellings {
			req, _ := http.NewRequest(http.MethodGet, gw.URL+"/me", nil)
			if cookie != "" {
				req.Header.Set("Cookie", "session="+cookie)
			}
			req.Header[name] = []string{"admin"}
			req.Header.Set("Connection", "X-Remote-User") // would make a proxy drop ours
			do(t, req)
			received := up.Last(t)
			var got []string
			for k, v := range received {
				if strings.EqualFold(strings.NewReplacer("_", "-").Replace(k), "x-remote-user") {
					got = append(got, k+"="+strings.Join(v, ","))
				}
			}
			want := ""
			if cookie != "" {
				want = "X-Remote-User=alice"
			}
			if strings.Join(got, ";") != want {
				t.Errorf("cookie=%t, client sent %s: upstream got %q, want %q", cookie != "", name, got, want)
			}
		}
	}
	// Trailers cannot carry it either.
	resp, _ = rawRequest(t, gw, "POST /me HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Remote-User\r\nConnection: close\r\n\r\n"+
		"0\r\nX-Remote-User: admin\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Errorf("chunked request: %d", resp.StatusCode)
	}
}

func TestCrossSiteRequestProtection(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), `
	session {
		secret {env.IT_SESSION_SECRET}
		csrf_protection {
			trusted_origin https://sso.example.com
		}
	}
	reverse_proxy {upstream}
`)
	tests := []struct {
		method  string
		headers []string
		want    int
	}{
		{http.MethodPost, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{http.MethodPut, []string{"Sec-Fetch-Site", "same-site"}, http.StatusForbidden},
		{http.MethodDelete, []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{http.MethodPatch, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{http.MethodPost, []string{"Sec-Fetch-Site", "same-origin"}, http.StatusOK},
		{http.MethodPost, []string{"Sec-Fetch-Site", "none"}, http.StatusOK},
		{http.MethodPost, []string{"Origin", "https://sso.example.com", "Sec-Fetch-Site", "cross-site"}, http.StatusOK},
		{http.MethodPost, nil, http.StatusOK}, // not a browser: no headers to judge by
		{http.MethodGet, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusOK},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, gw.URL+"/me", strings.NewReader("x=1"))
		for i := 0; i+1 < len(tt.headers); i += 2 {
			req.Header.Set(tt.headers[i], tt.headers[i+1])
		}
		if resp, _ := do(t, req); resp.StatusCode != tt.want {
			t.Errorf("%s %v: %d, want %d", tt.method, tt.headers, resp.StatusCode, tt.want)
		}
	}
}

func TestUserKeyNamesTheUserInAccessLogs(t *testing.T) {
	up := startUpstream(t, appRoutes())
	gw := startGateway(t, up.Addr(), `
	session {
		secret {env.IT_SESSION_SECRET}
		user_key user
	}
	log
	reverse_proxy {upstream}
`)
	resp, _ := get(t, gw.URL+"/login", "")
	get(t, gw.URL+"/me", sessionCookie(t, resp).Value)
	if !gw.WaitForLog(`"user_id":"alice"`) {
		t.Error("the access log does not name the user")
	}
}

func TestSessionMatcherInExpressions(t *testing.T) {
	up := startUpstream(t, storeRoutes())
	gw := startGateway(t, up.Addr(), `
	session {
		secret {env.IT_SESSION_SECRET}
	}
	@staff expression session('user', 'alice', 'bob') && {path}.startsWith('/staff')
	respond @staff "staff only" 200
	@carted session cart 2
	respond @carted "has item 2" 200
	reverse_proxy {upstream}
`)
	resp, _ := get(t, gw.URL+"/login", "")
	login := sessionCookie(t, resp).Value
	if _, body := get(t, gw.URL+"/staff/x", login); body != "staff only" {
		t.Errorf("CEL: %q", body)
	}
	if _, body := get(t, gw.URL+"/staff/x", ""); body == "staff only" {
		t.Error("CEL matched without a session")
	}
	resp, _ = get(t, gw.URL+"/cart", login)
	if _, body := get(t, gw.URL+"/x", sessionCookie(t, resp).Value); body != "has item 2" {
		t.Errorf("array matcher: %q", body)
	}
}
