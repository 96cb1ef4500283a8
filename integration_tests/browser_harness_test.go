package integration_tests

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// chromiumPath is the launcher of Debian's chromium package, which
// .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// browserTestTimeout bounds everything one browser test asks of Chromium,
// so that a wedged browser fails the test instead of hanging the package.
const browserTestTimeout = 20 * time.Second

// browser is the one Chromium process of the test package, started by the
// first browser test and stopped by TestMain. One process for all tests
// keeps each test at a fraction of a second; isolation comes from a fresh
// browser context (its own cookie jar) per test.
var browser struct {
	once sync.Once
	root context.Context // the chromedp context that owns the process
	stop func()
	err  error
}

// requireChromium fails the test under CI=true, and skips it elsewhere,
// when Debian's chromium is not installed.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required (apt-get install chromium): %v", err)
		}
		t.Skipf("chromium is not installed: %v", err)
	}
}

// startBrowser starts the package's Chromium once and returns the error of
// that one start to every caller.
func startBrowser() error {
	browser.once.Do(func() {
		// The machine has no network but loopback: the flags after
		// --disable-gpu turn off the first-run work, QUIC and the
		// background fetches (updates, sync) that would otherwise make
		// Chromium wait on lookups that never answer. The allocator adds
		// a fresh temporary --user-data-dir, removed when the process
		// ends.
		alloc, stopAlloc := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(chromiumPath),
			chromedp.Headless,
			chromedp.NoSandbox, // root, inside a container
			chromedp.Flag("disable-gpu", true),
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
		)
		root, stopRoot := chromedp.NewContext(alloc)
		browser.root = root
		browser.stop = func() { stopRoot(); stopAlloc() }

		// The process lives as long as the context of the first Run, so
		// that Run gets root itself, without a timeout; the start is
		// bounded here instead.
		started := make(chan error, 1)
		go func() { started <- chromedp.Do(root) }()
		select {
		case browser.err = <-started:
		case <-time.After(30 * time.Second):
			browser.err = errors.New("chromium did not start within 30s")
		}
	})
	return browser.err
}

// closeBrowser stops the package's Chromium, if a test started it.
func closeBrowser() {
	if browser.stop != nil {
		browser.stop()
	}
}

// newTab returns a chromedp context for a tab in a browser context of its
// own, so no cookie of another test is seen, bounded by
// browserTestTimeout. The tab and its browser context are disposed of
// when the test ends.
func newTab(t *testing.T) context.Context {
	t.Helper()
	requireChromium(t)
	if err := startBrowser(); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	tab, closeTab := chromedp.NewContext(browser.root, chromedp.WithNewBrowserContext())
	ctx, cancel := context.WithTimeout(tab, browserTestTimeout)
	t.Cleanup(func() { cancel(); closeTab() })
	return ctx
}

// visit navigates the tab to url, as a user following a link would, fails
// the test unless the answer is a 200, and returns the page's text.
func visit(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		// An error status with an empty body, such as the gateway's 502
		// for a session over budget, is ERR_HTTP_RESPONSE_CODE_FAILURE
		// here: Chromium shows its own error page, without the status.
		t.Fatalf("navigating to %s: %v", url, err)
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("navigating to %s: %d %s", url, resp.Status, resp.StatusText)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return text
}

// echoed is what /me of browserRoutes shows: the request as the upstream
// got it from the gateway.
type echoed struct {
	Session string `json:"session"` // the X-Session header
	Cookie  string `json:"cookie"`  // the Cookie header, session cookies already stripped
}

// visitMe navigates the tab to gw's /me and returns what the upstream got.
func visitMe(t *testing.T, ctx context.Context, gw *gateway) echoed {
	t.Helper()
	var e echoed
	if text := visit(t, ctx, gw.URL+"/me"); json.Unmarshal([]byte(text), &e) != nil {
		t.Fatalf("/me shows %q, not the upstream's echo", text)
	}
	return e
}

// browserRoutes is the app behind the gateway in the browser tests.
func browserRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/login":  setsSession("X-Session-Update", `{"user":"alice"}`),
		"/me":     echoRequest,
		"/grow":   storesText,
		"/shrink": setsSession("X-Session-Replace", `{"user":"alice"}`),
		"/logout": setsSession("X-Session-Replace", `{}`),
	}
}

// echoRequest answers with the X-Session and Cookie headers it got, as
// the JSON of an echoed, in plain text so that the browser shows it as is.
func echoRequest(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_ = json.NewEncoder(w).Encode(echoed{Session: r.Header.Get("X-Session"), Cookie: r.Header.Get("Cookie")})
}

// storesText stores sessionText(n) under "text" for /grow?n=<n>.
func storesText(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 0 {
		http.Error(w, "want ?n=<bytes>", http.StatusBadRequest)
		return
	}
	patch, _ := json.Marshal(map[string]string{"text": sessionText(n)})
	w.Header().Set("X-Session-Update", string(patch))
	_, _ = w.Write([]byte("stored"))
}

// sessionText returns n letters and digits, the same ones for the same n.
// They need no JSON escaping and are as incompressible as real data, so
// the session's cookies grow with n.
func sessionText(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	r := rand.New(rand.NewPCG(uint64(n), 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// storedText returns the "text" value of the session JSON s.
func storedText(t *testing.T, s string) string {
	t.Helper()
	var session struct{ Text string }
	if err := json.Unmarshal([]byte(s), &session); err != nil {
		t.Fatalf("X-Session %q: %v", s, err)
	}
	return session.Text
}

// storedCookies returns every cookie the tab's browser context holds,
// partitioned ones included, as Chromium stored them.
func storedCookies(t *testing.T, ctx context.Context) []*network.Cookie {
	t.Helper()
	res, err := chromedp.CallBrowser(ctx, storage.GetCookies,
		storage.GetCookiesParams{BrowserContextID: chromedp.FromContext(ctx).BrowserContextID})
	if err != nil {
		t.Fatalf("reading the browser's cookies: %v", err)
	}
	return res.Cookies
}

// sessionCookies returns the stored cookies of the session called name:
// name itself and its parts name.1, name.2, ..., sorted by name.
func sessionCookies(t *testing.T, ctx context.Context, name string) []*network.Cookie {
	t.Helper()
	var found []*network.Cookie
	for _, c := range storedCookies(t, ctx) {
		if c.Name == name || strings.HasPrefix(c.Name, name+".") {
			found = append(found, c)
		}
	}
	slices.SortFunc(found, func(a, b *network.Cookie) int { return strings.Compare(a.Name, b.Name) })
	return found
}

// cookieNames returns the names of cs, for messages and comparisons.
func cookieNames(cs []*network.Cookie) []string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return names
}

// partNames returns the names a session split over n cookies has: name,
// name.1, ..., name.<n-1>.
func partNames(name string, n int) []string {
	names := []string{name}
	for i := 1; i < n; i++ {
		names = append(names, name+"."+strconv.Itoa(i))
	}
	return names
}

// cookieBytes returns the bytes cs take in a Cookie header, name=value
// each, without the "; " between them.
func cookieBytes(cs []*network.Cookie) int {
	n := 0
	for _, c := range cs {
		n += len(c.Name) + 1 + len(c.Value)
	}
	return n
}

// startBrowserGateway starts browserRoutes behind a gateway at
// http://localhost:<port>, with lines added to its session block.
func startBrowserGateway(t *testing.T, lines ...string) *gateway {
	t.Helper()
	up := startUpstream(t, browserRoutes())
	var site strings.Builder
	site.WriteString("\tsession {\n\t\tsecret {env.IT_SESSION_SECRET}\n")
	for _, line := range lines {
		site.WriteString("\t\t" + line + "\n")
	}
	site.WriteString("\t}\n\treverse_proxy {upstream}\n")
	return startGatewayAt(t, "localhost", up.Addr(), site.String())
}
