package integration_tests

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The browser tests drive a real headless Chromium against a real gateway
// and assert what the browser did: which cookies it stored, with which
// attributes, and what it sent back. The gateway runs at
// http://localhost:<port>, which Chromium counts as a secure context, so
// Secure, __Host- and Partitioned cookies are stored over plain HTTP.

// splitBudget lets a session of a few KB be split over several cookies.
var splitBudget = []string{"max_cookie_bytes 12KiB", "max_cookie_parts 4"}

// splitText is the size of a session value too large for one cookie.
const splitText = 6000

// requireSplit fails the test unless the browser holds the session called
// name split over at least two cookies, numbered without gaps, and
// returns them.
func requireSplit(t *testing.T, ctx context.Context, name string) []*network.Cookie {
	t.Helper()
	parts := sessionCookies(t, ctx, name)
	if got := cookieNames(parts); len(got) < 2 || !slices.Equal(got, partNames(name, len(got))) {
		t.Fatalf("stored session cookies %q, want %s split over numbered parts", got, name)
	}
	return parts
}

// requireCookies fails the test unless the browser holds exactly the
// session cookies named want.
func requireCookies(t *testing.T, ctx context.Context, name string, want ...string) []*network.Cookie {
	t.Helper()
	cs := sessionCookies(t, ctx, name)
	if got := cookieNames(cs); !slices.Equal(got, want) {
		t.Fatalf("stored session cookies %q, want %q", got, want)
	}
	return cs
}

func TestBrowserLoginCookie(t *testing.T) {
	gw := startBrowserGateway(t)
	ctx := newTab(t)

	visit(t, ctx, gw.URL+"/login")
	if all := storedCookies(t, ctx); len(all) != 1 {
		t.Fatalf("stored cookies %q, want session alone", cookieNames(all))
	}
	c := requireCookies(t, ctx, "session", "session")[0]
	if !c.HTTPOnly || c.Path != "/" || c.Secure || c.Value == "" {
		t.Errorf("stored %+v: want HttpOnly, Path=/, not Secure", c)
	}

	// The gateway opened what the browser sent back, and kept the cookie
	// itself from the upstream.
	if got := visitMe(t, ctx, gw); got.Session != `{"user":"alice"}` || got.Cookie != "" {
		t.Errorf("/me got X-Session %q, Cookie %q; want alice's session and no cookie", got.Session, got.Cookie)
	}
}

func TestBrowserSplitSession(t *testing.T) {
	gw := startBrowserGateway(t, splitBudget...)
	ctx := newTab(t)

	visit(t, ctx, gw.URL+fmt.Sprintf("/grow?n=%d", splitText))
	parts := requireSplit(t, ctx, "session")
	for _, c := range parts {
		if !c.HTTPOnly || c.Path != "/" {
			t.Errorf("part %s: HttpOnly %v, Path %q; want the first cookie's attributes", c.Name, c.HTTPOnly, c.Path)
		}
	}
	if n := cookieBytes(parts); n > 12*1024 {
		t.Errorf("the parts take %d bytes of Cookie header, over the 12 KiB budget", n)
	}

	// Every part came back and was joined in order.
	got := storedText(t, visitMe(t, ctx, gw).Session)
	if got != sessionText(splitText) {
		t.Errorf("/me got a %d-byte value, not the %d bytes stored", len(got), splitText)
	}
}

func TestBrowserShrinkAndLogout(t *testing.T) {
	gw := startBrowserGateway(t, splitBudget...)
	ctx := newTab(t)
	grow := gw.URL + fmt.Sprintf("/grow?n=%d", splitText)

	visit(t, ctx, grow)
	requireSplit(t, ctx, "session")
	visit(t, ctx, gw.URL+"/shrink") // replaces the session with a small one
	requireCookies(t, ctx, "session", "session")
	if got := visitMe(t, ctx, gw).Session; got != `{"user":"alice"}` {
		t.Errorf("after the shrink /me got %q", got)
	}

	visit(t, ctx, grow)
	requireSplit(t, ctx, "session")
	visit(t, ctx, gw.URL+"/logout")
	requireCookies(t, ctx, "session")
	if got := visitMe(t, ctx, gw).Session; got != "{}" {
		t.Errorf("after the logout /me got %q", got)
	}
}

// largestAccepted returns the largest n for which the gateway at url
// issues the session that /grow?n=<n> stores, answering 200 rather than
// 502. It asks over plain HTTP, each time with a new session, and
// searches by halves: a longer value never makes a smaller cookie.
func largestAccepted(t *testing.T, url string) int {
	t.Helper()
	accepted := func(n int) bool {
		resp, _ := get(t, fmt.Sprintf("%s/grow?n=%d", url, n), "")
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("/grow?n=%d: %s", n, resp.Status)
		}
		return resp.StatusCode == http.StatusOK
	}
	lo, hi := 0, 64*1024 // accepted, refused
	if !accepted(lo) || accepted(hi) {
		t.Fatalf("want an empty value accepted and %d bytes refused", hi)
	}
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; accepted(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// The default budget must keep the largest session the gateway issues,
// next to the site's own cookies, under what Caddy accepts in request
// headers by default: a browser that stored it must never be locked out
// with 431, not even from /logout. (Caddy's max_header_size is 16 KiB,
// which net/http enforces with slack: about 24 KB of headers get through.
// So the 4 KB bound on the session's cookies is the sharper check here.)
func TestBrowserNo431AtDefaultBudget(t *testing.T) {
	gw := startBrowserGateway(t)
	ctx := newTab(t)
	n := largestAccepted(t, gw.URL)
	t.Logf("largest session value the default budget accepts: %d bytes", n)

	// Two ordinary cookies of the site, set by the page itself.
	visit(t, ctx, gw.URL+"/")
	for _, name := range []string{"site1", "site2"} {
		script := fmt.Sprintf(`document.cookie = %q + "=" + "v".repeat(2500) + "; path=/"; document.cookie.includes(%q)`, name, name+"=")
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](script)); err != nil || !ok {
			t.Fatalf("the page could not set %s: %v", name, err)
		}
	}

	visit(t, ctx, gw.URL+fmt.Sprintf("/grow?n=%d", n))
	session := sessionCookies(t, ctx, "session")
	if len(session) == 0 {
		t.Fatal("the browser stored no session cookie")
	}
	if b := cookieBytes(session); b > 4096 {
		t.Errorf("the session's cookies %q take %d bytes of Cookie header, over 4096", cookieNames(session), b)
	}

	// visit fails the test on any status but 200, 431 included.
	got := visitMe(t, ctx, gw)
	if storedText(t, got.Session) != sessionText(n) {
		t.Errorf("/me did not get the %d-byte value back", n)
	}
	if strings.Count(got.Cookie, strings.Repeat("v", 2500)) != 2 {
		t.Errorf("/me did not get both site cookies: Cookie %d bytes", len(got.Cookie))
	}
	// Nothing here adds to the session: a session at the budget that
	// grows is refused with a 502, rightly.
	for _, path := range []string{"/", "/me", "/logout", "/me"} {
		visit(t, ctx, gw.URL+path)
	}
	requireCookies(t, ctx, "session")
}

func TestBrowserPrefixedNames(t *testing.T) {
	for _, tt := range []struct {
		cookie string
		split  bool
	}{
		{"__Host-sess", false},
		{"__Host-sess", true},
		{"__Secure-sess", false},
	} {
		t.Run(fmt.Sprintf("%s/split=%v", tt.cookie, tt.split), func(t *testing.T) {
			lines := []string{"cookie_name " + tt.cookie, "cookie_secure true"}
			path, want := "/login", `{"user":"alice"}`
			if tt.split {
				lines = append(lines, splitBudget...)
				path = fmt.Sprintf("/grow?n=%d", splitText)
			}
			gw := startBrowserGateway(t, lines...)
			ctx := newTab(t)

			visit(t, ctx, gw.URL+path)
			var cs []*network.Cookie
			if tt.split {
				cs = requireSplit(t, ctx, tt.cookie)
			} else {
				cs = requireCookies(t, ctx, tt.cookie, tt.cookie)
			}
			// Every part keeps what __Host- asks of the first cookie:
			// Secure, Path=/ and no Domain (host-only).
			for _, c := range cs {
				if !c.Secure || c.Path != "/" || c.Domain != "localhost" {
					t.Errorf("stored %s: Secure %v, Path %q, Domain %q; want Secure, Path=/, host-only", c.Name, c.Secure, c.Path, c.Domain)
				}
			}

			got := visitMe(t, ctx, gw).Session
			if tt.split {
				if storedText(t, got) != sessionText(splitText) {
					t.Errorf("/me did not get the %d-byte value back", splitText)
				}
			} else if got != want {
				t.Errorf("/me got %q, want %q", got, want)
			}
		})
	}
}

func TestBrowserSameSiteAndPartitioned(t *testing.T) {
	for _, tt := range []struct {
		name        string
		lines       []string
		sameSite    network.CookieSameSite
		secure      bool
		partitioned bool
	}{
		{"strict", []string{"cookie_samesite strict"}, network.CookieSameSiteStrict, false, false},
		{"lax", []string{"cookie_samesite lax"}, network.CookieSameSiteLax, false, false},
		{"none", []string{"cookie_samesite none", "cookie_secure true"}, network.CookieSameSiteNone, true, false},
		{"partitioned", []string{"cookie_samesite none", "cookie_secure true", "cookie_partitioned true"}, network.CookieSameSiteNone, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gw := startBrowserGateway(t, tt.lines...)
			ctx := newTab(t)

			visit(t, ctx, gw.URL+"/login")
			c := requireCookies(t, ctx, "session", "session")[0]
			if c.SameSite != tt.sameSite || c.Secure != tt.secure {
				t.Errorf("stored SameSite %q, Secure %v; want %q, %v", c.SameSite, c.Secure, tt.sameSite, tt.secure)
			}
			// A partitioned cookie is keyed by the top-level site,
			// schemeful: http://localhost.
			if partitioned := c.PartitionKey != nil; partitioned != tt.partitioned {
				t.Errorf("stored partition key %+v, want partitioned %v", c.PartitionKey, tt.partitioned)
			} else if partitioned && c.PartitionKey.TopLevelSite != "http://localhost" {
				t.Errorf("stored partition key %+v, want the top-level site http://localhost", c.PartitionKey)
			}
			if got := visitMe(t, ctx, gw).Session; got != `{"user":"alice"}` {
				t.Errorf("/me got %q: the browser did not send the cookie back", got)
			}
		})
	}
}
