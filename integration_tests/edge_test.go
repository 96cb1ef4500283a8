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
	_, edge, _ := runExample(t)
	const name = "edge_session"
	login := func(query string) string {
		t.Helper()
		resp, _ := getCookies(t, edge.URL+"/login?"+query, "")
		return name + "=" + namedCookie(t, resp, name).Value
	}

	// Anonymous: /app and /app/... redirect to the login, keeping where
	// they were going; /admin too; /api/* answers 401. Static files are
	// public and do not vary by cookie; the home page says nobody is
	// logged in.
	for path, next := range map[string]string{
		"/app/reports?year=2026": "/app/reports?year=2026",
		"/app":                   "/app",
		"/app/":                  "/app/",
		"/APP/x":                 "/APP/x",
		"/admin/":                "/admin/",
		"/admin":                 "/admin",
	} {
		resp, _ := get(t, edge.URL+path, "")
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/login?next="+url.QueryEscape(next) {
			t.Errorf("anonymous %s: %d %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, path := range []string{"/api/whoami", "/api"} {
		if resp, body := get(t, edge.URL+path, ""); resp.StatusCode != http.StatusUnauthorized || body != `{"error":"not logged in"}` {
			t.Errorf("anonymous %s: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, body := get(t, edge.URL+"/static/demo.css", "")
	if resp.StatusCode != 200 || len(resp.Header.Values("Vary")) != 0 || len(resp.Header.Values("Set-Cookie")) != 0 || !strings.Contains(body, "body {") {
		t.Errorf("public CSS: %d Vary %q", resp.StatusCode, resp.Header.Values("Vary"))
	}
	if resp.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Errorf("static Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	if resp, body := get(t, edge.URL+"/", ""); resp.StatusCode != 200 || !strings.Contains(body, `<p class="who">Not logged in</p>`) || !strings.Contains(body, `<a href="/app/">`) {
		t.Errorf("home page: %d %s", resp.StatusCode, body)
	}

	// The login form keeps next; logging in sends the browser on to it.
	_, body = get(t, edge.URL+"/login?next="+url.QueryEscape("/app/reports?year=2026"), "")
	if !strings.Contains(body, `<input type="hidden" name="next" value="/app/reports?year=2026">`) {
		t.Errorf("the login form drops next: %s", body)
	}
	resp, body = get(t, edge.URL+"/login?user=bob&next="+url.QueryEscape("/app/reports?year=2026"), "")
	bob := name + "=" + namedCookie(t, resp, name).Value
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/app/reports?year=2026" || !strings.Contains(body, `href="/app/reports?year=2026"`) {
		t.Errorf("login does not lead on to next: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}

	// Only a path on this site: anything a browser could read as another
	// site, or as a scheme, goes to /.
	for _, next := range []string{
		"//evil.example/", `/\evil.example/`, "https://evil.example/", "http:/evil.example",
		"javascript:alert(1)", "evil.example", "/\t/evil.example", "/\n/evil.example",
		"\t//evil.example", " /app/", "/app/\r\nSet-Cookie: x=1", "///evil.example", "",
	} {
		resp, body := get(t, edge.URL+"/login?user=bob&next="+url.QueryEscape(next), "")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || !strings.Contains(body, `<a href="/">`) {
			t.Errorf("next=%q: %d Location %q %s", next, resp.StatusCode, resp.Header.Get("Location"), body)
		}
		if _, body := get(t, edge.URL+"/login?next="+url.QueryEscape(next), ""); !strings.Contains(body, `name="next" value="/"`) {
			t.Errorf("next=%q: the login form carries it on: %s", next, body)
		}
	}
	// A path that is only odd stays, escaped in the page.
	resp, body = get(t, edge.URL+"/login?user=bob&next="+url.QueryEscape(`/app/"><b>`), "")
	if resp.Header.Get("Location") != `/app/"><b>` || !strings.Contains(body, `href="/app/&#34;&gt;&lt;b&gt;"`) {
		t.Errorf("an odd path: %q %s", resp.Header.Get("Location"), body)
	}

	// A user without a role reaches /app and /api/, not /admin/.
	for _, path := range []string{"/app/reports", "/app", "/app/"} {
		if resp, body := getCookies(t, edge.URL+path, bob); resp.StatusCode != 200 || !strings.Contains(body, `<p class="who">Logged in as bob</p>`) || !strings.Contains(body, "<h1>App</h1>") {
			t.Errorf("bob %s: %d %s", path, resp.StatusCode, body)
		}
	}
	if _, body := getCookies(t, edge.URL+"/api/whoami", bob); body != `{"user":"bob"}` {
		t.Errorf("bob /api/: %q", body)
	}
	if resp, _ := getCookies(t, edge.URL+"/admin/", bob); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob /admin/: %d", resp.StatusCode)
	}
	if _, body := getCookies(t, edge.URL+"/", bob); !strings.Contains(body, `<p class="who">Logged in as bob</p>`) {
		t.Errorf("bob's home page: %s", body)
	}

	// An admin reaches /admin/; no client header can speak for the gateway.
	alice := login("user=alice&role=admin")
	resp, body = getCookies(t, edge.URL+"/admin/", alice, "X-Remote-User", "mallory", "X_Remote_Role", "root")
	if resp.StatusCode != 200 || !strings.Contains(body, `<p class="who">Logged in as alice (admin)</p>`) || !strings.Contains(body, "<h1>Admin</h1>") {
		t.Errorf("alice /admin/: %d %s", resp.StatusCode, body)
	}
	if _, body := getCookies(t, edge.URL+"/api/whoami", alice, "X-Remote-User", "mallory", "X_Remote_User", "root"); body != `{"user":"alice"}` {
		t.Errorf("alice /api/ with spoofed identity headers: %q", body)
	}
	if resp, _ := get(t, edge.URL+"/app/x", "", "X-Remote-User", "alice", "X-Session", `{"user":"alice"}`); resp.StatusCode != http.StatusFound {
		t.Errorf("spoofed headers logged someone in: %d", resp.StatusCode)
	}

	// A hostile user name is text.
	_, body = getCookies(t, edge.URL+"/app/", login("user="+url.QueryEscape("<script>alert(1)</script>")))
	if !strings.Contains(body, "Logged in as &lt;script&gt;alert(1)&lt;/script&gt;</p>") || strings.Contains(body, "<script>") {
		t.Errorf("a hostile name on /app/: %s", body)
	}

	// Unsafe cross-site requests are refused; same-origin ones pass.
	req, _ := http.NewRequest(http.MethodPost, edge.URL+"/api/things", nil)
	req.Header.Set("Cookie", alice)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := do(t, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d", resp.StatusCode)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if resp, _ := do(t, req); resp.StatusCode != http.StatusOK {
		t.Errorf("same-origin POST: %d", resp.StatusCode)
	}

	// Logging out leaves the gated pages closed again.
	resp, _ = getCookies(t, edge.URL+"/logout", alice)
	if c := namedCookie(t, resp, name); c.MaxAge != -1 || resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logout: %d %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
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
