package integration_tests

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The bad-input catalogue: hostile requests and hostile upstream responses
// sent through the real gateway, each with its defined outcome. After
// every case, whatever the outcome: no protocol header reached the client,
// and the upstream received exactly one X-Session header (or no request).

// hostileRoutes is an upstream that misbehaves in every way the catalogue
// names. The path selects the misbehaviour.
func hostileRoutes() map[string]http.HandlerFunc {
	mutation := func(pairs ...string) http.HandlerFunc { return setsSession(pairs...) }
	return map[string]http.HandlerFunc{
		"/me":               echoSession,
		"/login":            mutation("X-Session-Update", `{"user":"alice"}`),
		"/not-json":         mutation("X-Session-Update", `{"user":`),
		"/array":            mutation("X-Session-Update", `["user"]`),
		"/string":           mutation("X-Session-Replace", `"user"`),
		"/deep":             mutation("X-Session-Update", `{"a":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`),
		"/megabyte":         mutation("X-Session-Update", `{"a":"`+strings.Repeat("x", 1<<20)+`"}`),
		"/many-updates":     mutation(manyUpdates(70)...),
		"/replace-update":   mutation("X-Session-Replace", `{"r":1}`, "X-Session-Update", `{"u":2}`),
		"/two-replaces":     mutation("X-Session-Replace", `{"a":1}`, "X-Session-Replace", `{"b":2}`),
		"/two-spellings":    mutation("X-Session-Update", `{"a":1}`, "X_Session_Update", `{"b":2}`),
		"/bad-renew":        mutation("X-Session-Renew", "perhaps"),
		"/renew":            mutation("X-Session-Renew", "true"),
		"/unicode":          mutation("X-Session-Update", `{"name":"Zoë 😀"}`),
		"/null-missing":     mutation("X-Session-Update", `{"nothing":null}`),
		"/control-char":     mutation("X-Session-Update", "{\"a\":\"\x01\"}"),
		"/echo-x-session":   mutation("X-Session", `{"leak":true}`, "X-Session-Id", "leak"),
		"/foreign-cookie":   mutation("Set-Cookie", "session=garbage; Path=/"),
		"/other-cookie":     mutation("Set-Cookie", "theme=dark; Path=/", "X-Session-Update", `{"t":1}`),
		"/too-large":        mutation("X-Session-Update", `{"blob":"`+strings.Repeat("x", 20000)+`"}`),
		"/large":            mutation("X-Session-Update", `{"blob":"`+strings.Repeat("y", 6000)+`"}`),
		"/empty-object":     mutation("X-Session-Update", `{}`),
		"/whitespace":       mutation("X-Session-Update", " \t{ \"w\" : [ 1 , 2 ] }\t "),
		"/duplicate-keys":   mutation("X-Session-Update", `{"d":1,"d":2}`),
		"/lone-surrogate":   mutation("X-Session-Update", `{"\ud800":1,"\udc00":2}`),
		"/nan":              mutation("X-Session-Update", `{"n":NaN}`),
		"/big-number":       mutation("X-Session-Update", `{"n":18446744073709551617}`),
		"/trailing-garbage": mutation("X-Session-Update", `{"a":1} {"b":2}`),
		"/bom":              mutation("X-Session-Update", "\ufeff{\"a\":1}"),
		"/dot-spelling":     mutation("X.Session.Update", `{"dot":1}`),
		"/update-with-error": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Session-Update", `{"e":500}`)
			w.WriteHeader(500)
		},
		"/update-with-404": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Session-Update", `{"e":404}`)
			w.WriteHeader(404)
		},
		"/early-hints": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Session-Update", `{"early":1}`)
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("X-Session-Update")
			_, _ = w.Write([]byte("ok"))
		},
		"/trailer": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Session-Update")
			_, _ = w.Write([]byte("ok"))
			w.Header().Set("X-Session-Update", `{"late":1}`)
		},
		"/streamed": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Session-Update", `{"s":1}`)
			_, _ = w.Write([]byte("one"))
			http.NewResponseController(w).Flush()
			_, _ = w.Write([]byte("two"))
		},
	}
}

func manyUpdates(n int) []string {
	var pairs []string
	for i := range n {
		pairs = append(pairs, "X-Session-Update", fmt.Sprintf(`{"k%d":"%s"}`, i, strings.Repeat("z", 1000)))
	}
	return pairs
}

// A catalogue case. cookie names which cookie the request carries.
type hostileCase struct {
	name    string
	path    string
	cookie  string   // a key of the cookies map, or a literal Cookie header value with "lit:"
	headers []string // name, value pairs (names sent as written)
	raw     string   // a whole raw request instead; {cookie} is replaced

	status     []int  // acceptable statuses; default 200
	upstream   string // the X-Session the upstream must have received ("-" for no request)
	setCookie  string // "none", "set", "delete" or "any"
	sessionNow string // the session the client holds afterwards, as /me shows it ("" to skip)
}

func TestBadInputCatalogue(t *testing.T) {
	up := startUpstream(t, hostileRoutes())
	// A budget for three full cookies, so that a split session is read.
	gw := startGateway(t, up.Addr(), strings.Replace(sessionSite, "session {", "session {\n\t\tmax_cookie_bytes 12KiB", 1))
	resp, _ := get(t, gw.URL+"/login", "")
	valid := sessionCookie(t, resp).Value
	resp, _ = get(t, gw.URL+"/large", valid)
	var chunked []string
	for _, c := range resp.Cookies() {
		chunked = append(chunked, c.Name+"="+c.Value)
	}
	now := time.Now()
	cookies := map[string]string{
		"none":         "",
		"valid":        "session=" + valid,
		"oversized":    "session=" + strings.Repeat("A", 70000),
		"dup-first-ok": "session=" + valid + "; session=bogus",
		"dup-first-no": "session=bogus; session=" + valid,
		"bad-base64":   "session=!!!***",
		"truncated":    "session=" + valid[:len(valid)/2],
		"wrong-key":    "session=" + seal(t, alienSecret, `{"user":"mallory"}`, now),
		"future":       "session=" + seal(t, currentSecret, `{"user":"mallory"}`, now.Add(24*time.Hour)),
		"expired":      "session=" + seal(t, currentSecret, `{"user":"mallory"}`, now.Add(-40*24*time.Hour)),
		"empty":        "session=",
		"quoted":       `session="` + valid + `"`,
		"separators":   "session=fHx8",
		"chunked":      strings.Join(chunked, "; "),
		"missing-part": chunked[0],
		"absurd-count": "session=99!" + valid,
		"many-cookies": strings.Repeat("junk=1; ", 300) + "session=" + valid,
		"not-object":   "session=" + seal(t, currentSecret, `[1,2]`, now),
		"fallback-key": "session=" + seal(t, fallbackSecret, `{"user":"bob"}`, now),
	}
	const alice, fresh = `{"user":"alice"}`, `{}`
	big := `{"blob":"` + strings.Repeat("y", 6000) + `","user":"alice"}`

	cases := []hostileCase{
		// Hostile cookies: a fresh session, never an error, never deleted.
		{name: "no cookie", path: "/me", cookie: "none", upstream: fresh, setCookie: "none"},
		{name: "oversized cookie", path: "/me", cookie: "oversized", status: []int{200, 431}, upstream: fresh, setCookie: "none"},
		{name: "duplicate names, valid first", path: "/me", cookie: "dup-first-ok", upstream: alice, setCookie: "none"},
		{name: "duplicate names, bogus first", path: "/me", cookie: "dup-first-no", upstream: fresh, setCookie: "none"},
		{name: "invalid base64", path: "/me", cookie: "bad-base64", upstream: fresh, setCookie: "none"},
		{name: "truncated payload", path: "/me", cookie: "truncated", upstream: fresh, setCookie: "none"},
		{name: "wrong key", path: "/me", cookie: "wrong-key", upstream: fresh, setCookie: "none"},
		{name: "future timestamp", path: "/me", cookie: "future", upstream: fresh, setCookie: "none"},
		{name: "expired", path: "/me", cookie: "expired", upstream: fresh, setCookie: "none"},
		{name: "empty value", path: "/me", cookie: "empty", upstream: fresh, setCookie: "none"},
		{name: "quoted value", path: "/me", cookie: "quoted", upstream: alice, setCookie: "none"},
		{name: "separators only", path: "/me", cookie: "separators", upstream: fresh, setCookie: "none"},
		{name: "chunked cookie", path: "/me", cookie: "chunked", upstream: big, setCookie: "none"},
		{name: "chunk missing", path: "/me", cookie: "missing-part", upstream: fresh, setCookie: "none"},
		{name: "absurd chunk count", path: "/me", cookie: "absurd-count", upstream: fresh, setCookie: "none"},
		{name: "300 other cookies", path: "/me", cookie: "many-cookies", upstream: alice, setCookie: "none"},
		{name: "signed non-object", path: "/me", cookie: "not-object", upstream: fresh, setCookie: "none"},
		{name: "fallback key", path: "/me", cookie: "fallback-key", upstream: `{"user":"bob"}`, setCookie: "none"},

		// Spoofed protocol headers: removed before the upstream sees them.
		{name: "spoofed X-Session", path: "/me", cookie: "none", headers: []string{"X-Session", alice}, upstream: fresh},
		{name: "spoofed mixed case", path: "/me", cookie: "valid", headers: []string{"x-sEsSiOn", `{"user":"root"}`}, upstream: alice},
		{name: "spoofed mutation header", path: "/me", cookie: "valid", headers: []string{"X-SESSION-UPDATE", `{"user":"root"}`}, upstream: alice},
		{name: "spoofed with underscores", path: "/me", cookie: "none", headers: []string{"X_Session", alice, "x_session_id", "x"}, upstream: fresh},
		{name: "spoofed status", path: "/me", cookie: "valid", headers: []string{"X-Session-Status", "available"}, upstream: alice},
		{name: "Connection drops X-Session", path: "/me", cookie: "valid", headers: []string{"Connection", "X-Session"}, upstream: alice},
		{name: "obs-fold", raw: "GET /me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Foo: a\r\n X-Session: {\"user\":\"root\"}\r\nConnection: close\r\n\r\n",
			status: []int{200, 400}, upstream: fresh},
		{name: "request trailer", raw: "POST /me HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Session\r\nConnection: close\r\n\r\n" +
			"0\r\nX-Session: {\"user\":\"root\"}\r\n\r\n", upstream: fresh},
		{name: "NUL in a header", raw: "GET /me HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: session=a\x00b\r\nConnection: close\r\n\r\n",
			status: []int{400}, upstream: "-"},

		// Hostile mutations: 502, nothing of the upstream's answer, the old cookie intact.
		{name: "mutation not JSON", path: "/not-json", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "mutation an array", path: "/array", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "replacement a string", path: "/string", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "mutation nested 40 deep", path: "/deep", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "megabyte mutation header", path: "/megabyte", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "70 KB of updates", path: "/many-updates", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "two replacements", path: "/two-replaces", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "two spellings of update", path: "/two-spellings", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "renew neither true nor false", path: "/bad-renew", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "control character", path: "/control-char", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "keys that are not Unicode", path: "/lone-surrogate", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "NaN", path: "/nan", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "trailing garbage", path: "/trailing-garbage", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "byte order mark", path: "/bom", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "session over the budget", path: "/too-large", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},
		{name: "upstream's own undecodable session cookie", path: "/foreign-cookie", cookie: "valid", status: []int{502}, setCookie: "none", sessionNow: alice},

		// Odd but well-formed mutations: applied as defined.
		{name: "replace, then update", path: "/replace-update", cookie: "valid", setCookie: "set", sessionNow: `{"r":1,"u":2}`},
		{name: "renew with the cookie store", path: "/renew", cookie: "valid", setCookie: "set", sessionNow: alice},
		{name: "unicode", path: "/unicode", cookie: "valid", setCookie: "set", sessionNow: `{"name":"Zo\u00eb \ud83d\ude00","user":"alice"}`},
		{name: "null for a missing key on no session", path: "/null-missing", cookie: "none", setCookie: "delete"},
		{name: "empty update", path: "/empty-object", cookie: "valid", setCookie: "set", sessionNow: alice},
		{name: "whitespace", path: "/whitespace", cookie: "valid", setCookie: "set", sessionNow: `{"user":"alice","w":[1,2]}`},
		{name: "duplicate keys: the last wins", path: "/duplicate-keys", cookie: "valid", setCookie: "set", sessionNow: `{"d":2,"user":"alice"}`},
		{name: "a number beyond 64 bits", path: "/big-number", cookie: "valid", setCookie: "set", sessionNow: `{"n":18446744073709551617,"user":"alice"}`},
		{name: "dots for dashes", path: "/dot-spelling", cookie: "valid", setCookie: "set", sessionNow: `{"dot":1,"user":"alice"}`},
		{name: "upstream echoes X-Session", path: "/echo-x-session", cookie: "valid", setCookie: "none", sessionNow: alice},
		{name: "another cookie beside ours", path: "/other-cookie", cookie: "valid", setCookie: "set", sessionNow: `{"t":1,"user":"alice"}`},
		{name: "mutation on a 500", path: "/update-with-error", cookie: "valid", status: []int{500}, setCookie: "set", sessionNow: `{"e":500,"user":"alice"}`},
		{name: "mutation on a 404", path: "/update-with-404", cookie: "valid", status: []int{404}, setCookie: "set", sessionNow: `{"e":404,"user":"alice"}`},
		{name: "mutation on a 103 only", path: "/early-hints", cookie: "valid", setCookie: "none", sessionNow: alice},
		{name: "mutation as a trailer", path: "/trailer", cookie: "valid", setCookie: "none", sessionNow: alice},
		{name: "mutation before a streamed body", path: "/streamed", cookie: "valid", setCookie: "set", sessionNow: `{"s":1,"user":"alice"}`},
		{name: "a 6 KB session", path: "/large", cookie: "valid", setCookie: "set", sessionNow: big},
	}
	if len(cases) < 40 {
		t.Fatalf("the catalogue has %d cases; it promises at least 40", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cookieHeader, ok := cookies[c.cookie]
			if !ok && c.raw == "" {
				t.Fatalf("unknown cookie %q", c.cookie)
			}
			before := up.Count()
			var resp *http.Response
			var body string
			if c.raw != "" {
				resp, body = rawRequest(t, gw, strings.ReplaceAll(c.raw, "{cookie}", cookieHeader))
			} else {
				req, _ := http.NewRequest(http.MethodGet, gw.URL+c.path, nil)
				if cookieHeader != "" {
					req.Header.Set("Cookie", cookieHeader)
				}
				for i := 0; i+1 < len(c.headers); i += 2 {
					req.Header[c.headers[i]] = append(req.Header[c.headers[i]], c.headers[i+1])
				}
				resp, body = do(t, req)
			}
			want := c.status
			if want == nil {
				want = []int{200}
			}
			if !contains(want, resp.StatusCode) {
				t.Errorf("status %d, want one of %v (body %.200q)", resp.StatusCode, want, body)
			}
			noProtocolHeaders(t, "response", resp.Header)
			noProtocolHeaders(t, "trailers", resp.Trailer)
			if resp.StatusCode == http.StatusBadGateway && strings.Contains(body, "changed") {
				t.Error("the rejected upstream body reached the client")
			}
			switch {
			case c.upstream == "-":
				if up.Count() != before {
					t.Error("the request reached the upstream")
				}
			case c.upstream != "" && resp.StatusCode == 200:
				received := up.Last(t).Clone()
				if got := received.Values("X-Session"); len(got) != 1 || got[0] != c.upstream {
					t.Errorf("upstream X-Session %.120q, want %.120s", got, c.upstream)
				}
				delete(received, "X-Session")
				noProtocolHeaders(t, "upstream request", received)
			}
			checkSetCookie(t, resp, c.setCookie)
			if c.sessionNow != "" {
				held := cookieHeader
				if set := resp.Cookies(); len(set) > 0 {
					var pairs []string
					for _, sc := range set {
						if strings.HasPrefix(sc.Name, "session") && sc.MaxAge >= 0 {
							pairs = append(pairs, sc.Name+"="+sc.Value)
						}
					}
					held = strings.Join(pairs, "; ")
				}
				req, _ := http.NewRequest(http.MethodGet, gw.URL+"/me", nil)
				req.Header.Set("Cookie", held)
				if _, now := do(t, req); now != c.sessionNow {
					t.Errorf("the session is now %.200s, want %.200s", now, c.sessionNow)
				}
			}
		})
	}
}

func checkSetCookie(t *testing.T, resp *http.Response, want string) {
	t.Helper()
	var session []*http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			session = append(session, c)
		}
	}
	switch want {
	case "none":
		if len(session) != 0 {
			t.Errorf("a session Set-Cookie: %q", resp.Header.Values("Set-Cookie"))
		}
	case "set":
		if len(session) != 1 || session[0].MaxAge < 0 {
			t.Errorf("want the session cookie set: %q", resp.Header.Values("Set-Cookie"))
		}
	case "delete":
		if len(session) != 1 || session[0].MaxAge >= 0 {
			t.Errorf("want the session cookie deleted: %q", resp.Header.Values("Set-Cookie"))
		}
	}
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
