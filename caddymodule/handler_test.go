package caddymodule

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// recorder is a ResponseWriter that keeps every header it was asked to
// write, informational ones included, with the header map at that moment.
type recorder struct {
	header  http.Header
	written []int
	sent    []http.Header
	body    strings.Builder
	flushed bool
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	r.written = append(r.written, status)
	r.sent = append(r.sent, r.header.Clone())
}
func (r *recorder) Write(b []byte) (int, error) {
	if len(r.written) == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.body.Write(b)
}
func (r *recorder) Flush() {
	if len(r.written) == 0 {
		r.WriteHeader(http.StatusOK)
	}
	r.flushed = true
}

// final returns the final status and the header sent with it.
func (r *recorder) final(t testing.TB) (int, http.Header) {
	t.Helper()
	for i, status := range r.written {
		if status >= 200 {
			return status, r.sent[i]
		}
	}
	t.Fatalf("no final status was written (%v)", r.written)
	return 0, nil
}

func newTestHandler(t testing.TB, configure func(*Handler)) *Handler {
	t.Helper()
	h := &Handler{Secret: testSecretLiteral}
	if configure != nil {
		configure(h)
	}
	if err := h.Provision(serverContext(t, 0)); err != nil {
		t.Fatal(err)
	}
	return h
}

// renewGateway remakes h's gateway after a test replaced its manager.
func renewGateway(t testing.TB, h *Handler) {
	t.Helper()
	var err error
	if h.gateway, err = h.newGateway(); err != nil {
		t.Fatal(err)
	}
}

// serverContext is a context as Caddy provisions a server's handlers in:
// with the server, whose max_header_size is maxHeaderBytes (0: Caddy's
// default, 16 KiB), in it. Its modules are cleaned up when the test ends.
func serverContext(t testing.TB, maxHeaderBytes int) caddy.Context {
	server := &caddyhttp.Server{MaxHeaderBytes: cmp.Or(maxHeaderBytes, 16<<10)}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.WithValue(context.Background(), caddyhttp.ServerCtxKey, server)})
	t.Cleanup(cancel)
	return ctx
}

// serve runs one request through h in front of next, the way Caddy's server
// prepares it, and returns the replacer the handlers saw.
func serve(h *Handler, w http.ResponseWriter, r *http.Request, next caddyhttp.HandlerFunc) (*caddy.Replacer, error) {
	repl := caddy.NewReplacer()
	r = caddyhttp.PrepareRequest(r, repl, w, &caddyhttp.Server{})
	return repl, h.ServeHTTP(w, r, next)
}

// handlerStatus returns the status of the Caddy handler error err, or 0.
func handlerStatus(err error) int {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

// login runs a request whose upstream sets values and returns the cookie.
func login(t testing.TB, h *Handler, values string) *http.Cookie {
	t.Helper()
	rec := newRecorder()
	_, err := serve(h, rec, httptest.NewRequest("GET", "/login", nil), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Session-Replace", values)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, header := rec.final(t)
	c, err := http.ParseSetCookie(header.Get("Set-Cookie"))
	if err != nil {
		t.Fatalf("no session cookie: %v", err)
	}
	return c
}

func TestRequestCarriesSessionAndNoSpoofedHeaders(t *testing.T) {
	h := newTestHandler(t, nil)
	cookie := login(t, h, `{"user":"alice","n":5}`)

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "theme=dark; "+cookie.Name+"="+cookie.Value+"; lang=en")
	for _, name := range []string{"X-Session", "X_Session", "x-session-update", "X-SESSION-USER", "X_session_replace"} {
		r.Header[name] = []string{`{"user":"admin"}`}
	}
	var seen http.Header
	repl, err := serve(h, newRecorder(), r, func(w http.ResponseWriter, r *http.Request) error {
		seen = r.Header.Clone()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := seen["X-Session"]; len(got) != 1 || got[0] != `{"n":5,"user":"alice"}` {
		t.Errorf("X-Session = %q", got)
	}
	for name := range seen {
		if name != "X-Session" && strings.HasPrefix(strings.ToLower(strings.ReplaceAll(name, "_", "-")), "x-session") {
			t.Errorf("spoofed header %s reached the upstream", name)
		}
	}
	if got := seen.Get("Cookie"); got != "theme=dark; lang=en" {
		t.Errorf("Cookie upstream = %q, want the other cookies only", got)
	}
	if user, _ := repl.GetString("http.session.user"); user != "alice" {
		t.Errorf("{http.session.user} = %q", user)
	}
	if n, _ := repl.GetString("http.session.n"); n != "5" {
		t.Errorf("{http.session.n} = %q", n)
	}
}

func TestResponseMutationIsAppliedAndStripped(t *testing.T) {
	h := newTestHandler(t, nil)
	cookie := login(t, h, `{"user":"alice"}`)

	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	rec := newRecorder()
	repl, err := serve(h, rec, r, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Session-Update", `{"cart":[1,2],"user":null}`)
		w.Header().Set("X_Session_Debug", "leak?")
		w.Header().Set("Content-Type", "text/plain")
		_, err := io.WriteString(w, "hello")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	status, header := rec.final(t)
	if status != 200 || rec.body.String() != "hello" {
		t.Errorf("response %d %q", status, rec.body.String())
	}
	for name := range header {
		if strings.Contains(strings.ToLower(name), "session") {
			t.Errorf("protocol header %s reached the client", name)
		}
	}
	if header.Get("Vary") != "Cookie" || header.Get("Cache-Control") != "private" {
		t.Errorf("Vary %q, Cache-Control %q", header.Get("Vary"), header.Get("Cache-Control"))
	}
	if cart, _ := repl.GetString("http.session.cart"); cart != "[1,2]" {
		t.Errorf("placeholder after the change: %q", cart)
	}
	if user, known := repl.GetString("http.session.user"); known {
		t.Errorf("placeholder of a deleted key: %q", user)
	}

	// The reissued cookie carries the change.
	next, _ := http.ParseSetCookie(header.Get("Set-Cookie"))
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(next)
	var seen string
	if _, err := serve(h, newRecorder(), r, func(w http.ResponseWriter, r *http.Request) error {
		seen = r.Header.Get("X-Session")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen != `{"cart":[1,2]}` {
		t.Errorf("next request saw %s", seen)
	}
}

func TestUpstreamCacheControlIsKept(t *testing.T) {
	h := newTestHandler(t, nil)
	rec := newRecorder()
	if _, err := serve(h, rec, httptest.NewRequest("GET", "/", nil), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Session-Update", `{"a":1}`)
		w.WriteHeader(http.StatusCreated)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, header := rec.final(t); header.Get("Cache-Control") != "no-store" || header.Get("Set-Cookie") == "" {
		t.Errorf("header %v", header)
	}
}

func TestRejectedResponses(t *testing.T) {
	tests := []struct {
		name   string
		status int
		next   caddyhttp.HandlerFunc
	}{
		{"malformed mutation", http.StatusBadGateway, func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("X-Session-Update", `{"a":`)
			w.Header().Set("Content-Length", "5")
			_, err := io.WriteString(w, "hello")
			return err
		}},
		{"cookie too large", http.StatusBadGateway, func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("X-Session-Update", `{"blob":"`+strings.Repeat("x", 20000)+`"}`)
			_, err := io.WriteString(w, "hello")
			return err
		}},
		{"mutation through ReadFrom", http.StatusBadGateway, func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("X-Session-Replace", `[]`)
			_, err := w.(io.ReaderFrom).ReadFrom(io.LimitReader(strings.NewReader("hello"), 5))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, nil)
			cookie := login(t, h, `{"user":"alice"}`)
			r := httptest.NewRequest("GET", "/", nil)
			r.AddCookie(cookie)
			rec := newRecorder()
			_, err := serve(h, rec, r, tt.next)
			if handlerStatus(err) != tt.status {
				t.Fatalf("err = %v, want a %d handler error", err, tt.status)
			}
			if len(rec.written) != 0 || rec.body.Len() != 0 {
				t.Errorf("the rejected response leaked: %v %q", rec.written, rec.body.String())
			}
			if len(rec.header) != 0 {
				t.Errorf("headers left for the error response: %v", rec.header)
			}
		})
	}
}

func TestNullSessionRefusesMutationWith503(t *testing.T) {
	h := newTestHandler(t, nil)
	var err error
	h.sessions, err = sessioncore.NewManager(sessioncore.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	renewGateway(t, h)
	rec := newRecorder()
	_, err = serve(h, rec, httptest.NewRequest("GET", "/", nil), func(w http.ResponseWriter, r *http.Request) error {
		if got := r.Header.Get("X-Session"); got != "{}" {
			t.Errorf("X-Session = %q", got)
		}
		w.Header().Set("X-Session-Update", `{"a":1}`)
		return nil
	})
	if handlerStatus(err) != http.StatusServiceUnavailable || !errors.Is(err, sessioncore.ErrUnavailable) {
		t.Fatalf("err = %v, want 503 session unavailable", err)
	}
}

func TestInformationalResponsesAreStrippedNotFinal(t *testing.T) {
	h := newTestHandler(t, nil)
	rec := newRecorder()
	_, err := serve(h, rec, httptest.NewRequest("GET", "/", nil), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.Header().Set("X-Session-Update", `{"early":true}`)
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("X-Session-Update", `{"final":true}`)
		w.WriteHeader(http.StatusOK)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.written) != 2 || rec.written[0] != 103 || rec.written[1] != 200 {
		t.Fatalf("written %v", rec.written)
	}
	if early := rec.sent[0]; early.Get("Link") == "" || early.Get("X-Session-Update") != "" || early.Get("Set-Cookie") != "" {
		t.Errorf("103 header %v", early)
	}
	if final := rec.sent[1]; final.Get("Set-Cookie") == "" || final.Get("X-Session-Update") != "" {
		t.Errorf("200 header %v", final)
	}
}

func TestFlushBeforeHeaderStillSavesSession(t *testing.T) {
	h := newTestHandler(t, nil)
	rec := newRecorder()
	_, err := serve(h, rec, httptest.NewRequest("GET", "/", nil), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Session-Update", `{"a":1}`)
		if err := http.NewResponseController(w).Flush(); err != nil {
			return err
		}
		_, err := io.WriteString(w, "chunk")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, header := rec.final(t); header.Get("Set-Cookie") == "" || header.Get("X-Session-Update") != "" || !rec.flushed {
		t.Errorf("flushed=%v header %v", rec.flushed, header)
	}
}

func TestNothingWrittenStillRefreshesPermanentSession(t *testing.T) {
	h := newTestHandler(t, nil)
	cookie := login(t, h, `{"_permanent":true,"user":"alice"}`)
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	rec := newRecorder()
	if _, err := serve(h, rec, r, func(w http.ResponseWriter, r *http.Request) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if status, header := rec.final(t); status != 200 || !strings.Contains(header.Get("Set-Cookie"), "Expires=") {
		t.Errorf("%d %v", status, header)
	}
}

func TestProtocolTrailersNeverReachTheClient(t *testing.T) {
	h := newTestHandler(t, nil)
	rec := newRecorder()
	_, err := serve(h, rec, httptest.NewRequest("GET", "/", nil), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Trailer", "X-Checksum, X-Session-Update")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set("X-Session-Update", `{"late":true}`)
		w.Header().Set(http.TrailerPrefix+"X-Session-Replace", `{}`)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, header := rec.final(t); header.Get("Trailer") != "X-Checksum" {
		t.Errorf("Trailer announcement %q", header.Get("Trailer"))
	}
	if len(rec.header) != 3 || rec.header.Get("X-Checksum") != "abc" {
		t.Errorf("headers after the body (trailers): %v", rec.header)
	}
}

func TestNextErrorLeavesNoProtocolHeaders(t *testing.T) {
	h := newTestHandler(t, nil)
	rec := newRecorder()
	boom := caddyhttp.Error(http.StatusBadGateway, errors.New("upstream down"))
	_, err := serve(h, rec, httptest.NewRequest("GET", "/", nil), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Session-Update", `{"a":1}`)
		return boom
	})
	if !errors.Is(err, boom.Err) {
		t.Fatalf("err = %v", err)
	}
	if len(rec.header) != 0 {
		t.Errorf("headers left: %v", rec.header)
	}
}

func TestProvisionErrors(t *testing.T) {
	tests := []struct {
		name   string
		h      Handler
		errHas string
	}{
		{"no secret", Handler{}, "secret is required"},
		{"short secret from env", Handler{Secret: "{env.SESSION_TEST_SHORT}"}, "is 5 bytes long"},
		{"unset env", Handler{Secret: "{env.SESSION_TEST_UNSET_VARIABLE}"}, "secret is required"},
		{"short fallback", Handler{Secret: testSecretLiteral, SecretFallbacks: []string{"{env.SESSION_TEST_SHORT}"}}, "fallback secret 1 is 5 bytes long"},
		{"bad samesite", Handler{Secret: testSecretLiteral, CookieSameSite: "sometimes"}, "SameSite"},
		{"bad prefix", Handler{Secret: testSecretLiteral, HeaderPrefix: "X Session"}, "header prefix"},
		{"a forward header twice in JSON", Handler{Secret: testSecretLiteral, Forward: []ForwardHeader{{"user", "X-User"}, {"role", "x_user"}}}, "given twice"},
		{"forward into Cookie", Handler{Secret: testSecretLiteral, Forward: []ForwardHeader{{"user", "Cookie"}}}, "reserved"},
		{"forward into a protocol header", Handler{Secret: testSecretLiteral, Forward: []ForwardHeader{{"user", "X-Session-User"}}}, "session's own headers"},
		{"an unknown rails option", Handler{Secret: testSecretLiteral, Codec: "rails", CodecOptions: map[string]string{"key_digest": "sha256", "cipher": "aes-256-cbc"}}, "codec rails has no option cipher"},
		{"a bad rails key_digest", Handler{Secret: testSecretLiteral, Codec: "rails", CodecOptions: map[string]string{"key_digest": "md5"}}, "key_digest must be sha1"},
		{"options for a codec without any", Handler{Secret: testSecretLiteral, Codec: "flask", CodecOptions: map[string]string{"b": "1", "a": "2"}}, "codec flask takes no options, got a, b"},
	}
	t.Setenv("SESSION_TEST_SHORT", "short")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			err := tt.h.Provision(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("err = %v, want %q", err, tt.errHas)
			}
			if strings.Contains(err.Error(), "short\"") || strings.Contains(err.Error(), ": short") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

func TestMutationSetBeforeInformationalResponseIsKept(t *testing.T) {
	h := newTestHandler(t, nil)
	rec := newRecorder()
	_, err := serve(h, rec, httptest.NewRequest("GET", "/", nil), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Session-Update", `{"user":"alice"}`)
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusOK)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec.sent[0].Get("X-Session-Update") != "" {
		t.Errorf("the 103 carried the mutation header")
	}
	if _, header := rec.final(t); header.Get("Set-Cookie") == "" {
		t.Errorf("the mutation set before the 103 was lost: %v", header)
	}
}

func TestRejectedResponseKeepsHeadersOfEarlierHandlers(t *testing.T) {
	h := newTestHandler(t, nil)
	rec := newRecorder()
	rec.header.Set("Strict-Transport-Security", "max-age=31536000")
	_, err := serve(h, rec, httptest.NewRequest("GET", "/", nil), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("X-Session-Update", "not json")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "secret body")
		w.Header().Set("Grpc-Status", "0")
		return nil
	})
	if err == nil {
		t.Fatal("want a 502")
	}
	if len(rec.header) != 1 || rec.header.Get("Strict-Transport-Security") == "" {
		t.Errorf("header for the error response: %v", rec.header)
	}
}

func TestRejected101DoesNotHandOverTheConnection(t *testing.T) {
	h := newTestHandler(t, nil)
	rec := newRecorder()
	_, err := serve(h, rec, httptest.NewRequest("GET", "/", nil), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Session-Update", "not json")
		w.WriteHeader(http.StatusSwitchingProtocols)
		if _, _, err := http.NewResponseController(w).Hijack(); err == nil {
			t.Error("Hijack succeeded on a rejected 101")
		}
		return nil
	})
	if handlerStatus(err) != http.StatusBadGateway {
		t.Errorf("err = %v", err)
	}
}

func TestSecretWithBracesIsNotQuotedInErrors(t *testing.T) {
	h := Handler{Secret: "Zq8{Hk2pW}xx-0123456789abcdef0123456789"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := h.Provision(ctx)
	if err == nil || strings.Contains(err.Error(), "Hk2pW") {
		t.Errorf("err = %v", err)
	}
	h = Handler{Secret: `Zq8\{Hk2pW}xx-0123456789abcdef0123456789`}
	if err := h.Provision(ctx); err != nil {
		t.Errorf("an escaped brace: %v", err)
	}
}

// downStore is a store that is down.
type downStore struct{}

func (downStore) Load(context.Context, string) (map[string]json.RawMessage, bool, error) {
	return nil, false, fmt.Errorf("%w: connection refused", sessioncore.ErrStore)
}
func (downStore) Commit(context.Context, string, sessioncore.Changes, time.Duration) (bool, error) {
	return false, fmt.Errorf("%w: connection refused", sessioncore.ErrStore)
}
func (downStore) Delete(context.Context, string) (bool, error) {
	return false, fmt.Errorf("%w: connection refused", sessioncore.ErrStore)
}

func TestStoreDownFailClosedStripsSpoofedHeadersFirst(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { h.Forward = []ForwardHeader{{Key: "user", Header: "X-Remote-User"}} })
	codec, _ := sessioncore.NewSecureCookieCodec([]byte(testSecretLiteral))
	h.sessions, _ = sessioncore.NewManager(sessioncore.DefaultConfig(), codec, sessioncore.WithStore(downStore{}))
	renewGateway(t, h)
	id := strings.Repeat("A", 43)
	value, _ := codec.Encode("session", sessioncore.Payload{JSON: []byte(`{"sid":"` + id + `"}`), Issued: time.Now()})

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "session="+value)
	r.Header.Set("X-Session", `{"user":"admin"}`)
	r.Header.Set("X_Remote_User", "admin")
	_, err := serve(h, newRecorder(), r, func(w http.ResponseWriter, r *http.Request) error {
		t.Error("the request went on with the store down and fail_closed")
		return nil
	})
	if handlerStatus(err) != http.StatusServiceUnavailable {
		t.Fatalf("err = %v", err)
	}
	if r.Header.Get("X-Session") != "" || r.Header.Get("X_Remote_User") != "" {
		t.Errorf("spoofed headers left for an error route: %v", r.Header)
	}
}

func TestCrossSiteRejectionStripsSpoofedHeadersFirst(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) {
		h.CSRFProtection = &CSRFProtection{}
		h.Forward = []ForwardHeader{{Key: "user", Header: "X-Remote-User"}}
	})
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.Header.Set("X-Remote-User", "admin")
	r.Header.Set("X-Session", `{"user":"admin"}`)
	_, err := serve(h, newRecorder(), r, func(w http.ResponseWriter, r *http.Request) error {
		t.Error("a cross-site POST went on")
		return nil
	})
	if handlerStatus(err) != http.StatusForbidden {
		t.Fatalf("err = %v", err)
	}
	if r.Header.Get("X-Remote-User") != "" || r.Header.Get("X-Session") != "" {
		t.Errorf("spoofed headers left for an error route: %v", r.Header)
	}
}

func TestOnlyNumberedPartsAreTakenFromTheCookieHeader(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { yes := true; h.ForwardCookie = &yes })
	cookies, _ := upstreamCookies(t, h, "session.theme=dark; session.1=part; session.01=x; lang=en")
	if strings.Join(cookies, "|") != "session.theme=dark; session.01=x; lang=en" {
		t.Errorf("Cookie upstream: %q", cookies)
	}
}

// upstreamCookies sends a request with the given Cookie lines through h
// and returns the Cookie lines and the X-Session header the upstream got.
func upstreamCookies(t *testing.T, h *Handler, lines ...string) ([]string, string) {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	for _, line := range lines {
		r.Header.Add("Cookie", line)
	}
	var cookies []string
	var session string
	if _, err := serve(h, newRecorder(), r, func(w http.ResponseWriter, r *http.Request) error {
		cookies, session = r.Header["Cookie"], r.Header.Get("X-Session")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return cookies, session
}

// net/http and Werkzeug trim a cookie's name: "session =v" is the session
// cookie, to the gateway as to them.
func TestASpacedSessionCookieNameIsTheSessionCookie(t *testing.T) {
	h := newTestHandler(t, nil)
	value := login(t, h, `{"user":"alice"}`).Value
	cookies, session := upstreamCookies(t, h, "lang=en; session ="+value)
	if strings.Join(cookies, "|") != "lang=en" || session != `{"user":"alice"}` {
		t.Errorf("upstream got Cookie %q and X-Session %q", cookies, session)
	}
}

// The gateway reads the first session cookie as an upstream that reads it
// itself would, a spaced name included; one that does not open keeps every
// session cookie from the upstream, the valid one after it included.
func TestTheFirstSessionCookieIsTheOneAnUpstreamWouldRead(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { yes := true; h.ForwardCookie = &yes })
	value := login(t, h, `{"user":"alice"}`).Value
	cookies, session := upstreamCookies(t, h, "session =forged; lang=en; session="+value)
	if strings.Join(cookies, "|") != "lang=en" || session != "{}" {
		t.Errorf("upstream got Cookie %q and X-Session %q", cookies, session)
	}
}

// With forward_cookie, the upstream gets the cookie the gateway accepted,
// first on one line, whatever a client adds to make another parser read a
// different one.
func TestTheForwardedCookieIsTheOneTheGatewayAccepted(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { yes := true; h.ForwardCookie = &yes })
	valid := login(t, h, `{"user":"alice"}`).Value
	for _, tc := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"plain", []string{"session=VALID; lang=en"}, "session=VALID; lang=en"},
		{"quoted", []string{`lang=en; session="VALID"`}, "session=VALID; lang=en"},
		{"a quoted value hiding a ';' from Werkzeug", []string{`a="; session=VALID; "; session=EVIL`}, `session=VALID; a="; "`},
		{"a blank some parsers trim from a name and others keep", []string{"a=1; \u00a0session=VALID; session=EVIL"}, "session=VALID; a=1"},
		{"two lines, which Werkzeug's server joins with ','", []string{"x=1", "session=VALID; session=EVIL"}, "session=VALID; x=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			for _, line := range tc.lines {
				lines = append(lines, strings.ReplaceAll(line, "VALID", valid))
			}
			cookies, session := upstreamCookies(t, h, lines...)
			want := strings.ReplaceAll(tc.want, "VALID", valid)
			if len(cookies) != 1 || cookies[0] != want || session != `{"user":"alice"}` {
				t.Errorf("upstream got Cookie %q and X-Session %q, want %q", cookies, session, want)
			}
		})
	}
}

func TestProvisionRefusesAFutureRevokeBefore(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := Handler{Secret: testSecretLiteral, RevokeBefore: time.Now().Add(24 * time.Hour).Format(time.RFC3339)}
	if err := h.Provision(ctx); err == nil || !strings.Contains(err.Error(), "in the future") {
		t.Errorf("err = %v", err)
	}
}
