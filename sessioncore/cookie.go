package sessioncore

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/net/idna"
)

// MaxCookieSize is the largest Set-Cookie line (name, value and attributes)
// the gateway will send. RFC 6265 only promises that browsers keep cookies
// up to 4096 bytes; beyond that they drop them silently, and the user's
// session with them.
const MaxCookieSize = 4096

// SameSite values, as they appear in the cookie.
const (
	SameSiteUnset  = ""
	SameSiteLax    = "Lax"
	SameSiteStrict = "Strict"
	SameSiteNone   = "None"
)

// deletionExpires is the Expires attribute of a cookie being deleted.
const deletionExpires = "Thu, 01 Jan 1970 00:00:00 GMT"

// ParseSameSite reads a SameSite setting case-insensitively (lax, strict,
// none, or empty for unset) and returns it as it appears in a cookie.
func ParseSameSite(s string) (string, error) {
	switch strings.ToLower(s) {
	case "":
		return SameSiteUnset, nil
	case "lax":
		return SameSiteLax, nil
	case "strict":
		return SameSiteStrict, nil
	case "none":
		return SameSiteNone, nil
	}
	return "", fmt.Errorf("SameSite must be lax, strict or none, not %q", s)
}

// normalizeCookieDomain renders a Domain attribute the way Werkzeug does:
// without a port or a leading dot, IDNA-encoded, lower case.
func normalizeCookieDomain(domain string) (string, error) {
	if domain == "" {
		return "", nil
	}
	host, _, _ := strings.Cut(domain, ":")
	host = strings.TrimLeft(host, ".")
	ascii, err := idna.Lookup.ToASCII(host)
	if err != nil {
		return "", fmt.Errorf("cookie domain %q: %w", domain, err)
	}
	return strings.ToLower(ascii), nil
}

// quoteCookiePath percent-encodes a Path attribute the way Werkzeug does
// (Python's urllib.parse.quote with safe="%!$&'()*+,/:=@"), so ';', spaces
// and non-ASCII cannot break the Set-Cookie line.
func quoteCookiePath(path string) string {
	const safe = "%!$&'()*+,/:=@-._~"
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(safe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// Cookie name prefixes, which browsers enforce (matching them
// case-insensitively): a cookie whose name starts with one but lacks the
// attributes it requires is refused, so no session would ever stick.
// __Http- and __Host-Http- are RFC 6265bis's newer prefixes.
var cookiePrefixes = []struct {
	prefix           string // lower case
	httpOnly, atHost bool   // beyond Secure: HttpOnly; Path=/ and no Domain
	rule             string
}{
	{"__host-http-", true, true, "must be Secure and HttpOnly, with Path=/ and no Domain (cookie_secure true, cookie_httponly true, cookie_path /, no cookie_domain)"},
	{"__http-", true, false, "must be Secure and HttpOnly (cookie_secure true, cookie_httponly true)"},
	{"__host-", false, true, "must be Secure, with Path=/ and no Domain (cookie_secure true, cookie_path /, no cookie_domain)"},
	{"__secure-", false, false, "must be Secure (cookie_secure true)"},
}

// checkCookiePrefix refuses a cookie name whose prefix demands attributes
// the configuration does not give it. The parts of a split session share
// the name's prefix and all its attributes, so they pass too.
func checkCookiePrefix(c *Config) error {
	lower := strings.ToLower(c.CookieName)
	for _, p := range cookiePrefixes {
		if !strings.HasPrefix(lower, p.prefix) {
			continue
		}
		secure := c.CookieSecure || c.CookiePartitioned // Partitioned implies Secure
		if !secure || p.httpOnly && !c.CookieHTTPOnly || p.atHost && (c.CookiePath != "/" || c.CookieDomain != "") {
			return fmt.Errorf("cookie name %q: %s cookies %s; browsers refuse them otherwise", c.CookieName, c.CookieName[:len(p.prefix)], p.rule)
		}
		return nil
	}
	return nil
}

// cookieAttributes holds the attributes every session cookie of one
// Manager shares, already rendered, in Werkzeug's order: Domain comes
// before the expiry, the rest after it.
type cookieAttributes struct {
	name   string
	domain string // "; Domain=..." or ""
	tail   string // "; Secure; HttpOnly; Path=...; SameSite=...; Partitioned"
}

func newCookieAttributes(c *Config) cookieAttributes {
	a := cookieAttributes{name: c.CookieName}
	if c.CookieDomain != "" {
		a.domain = "; Domain=" + c.CookieDomain
	}
	var tail strings.Builder
	if c.CookieSecure || c.CookiePartitioned { // browsers require Secure on partitioned cookies
		tail.WriteString("; Secure")
	}
	if c.CookieHTTPOnly {
		tail.WriteString("; HttpOnly")
	}
	if c.CookiePath != "" {
		tail.WriteString("; Path=" + quoteCookiePath(c.CookiePath))
	}
	if c.CookieSameSite != SameSiteUnset {
		tail.WriteString("; SameSite=" + c.CookieSameSite)
	}
	if c.CookiePartitioned {
		tail.WriteString("; Partitioned")
	}
	a.tail = tail.String()
	return a
}

// setLine renders a Set-Cookie value that stores value. A zero expires
// makes a browser-session cookie; otherwise both Expires and Max-Age are set.
func (a *cookieAttributes) setLine(value string, now, expires time.Time) string {
	b := make([]byte, 0, len(a.name)+1+len(value)+len(a.domain)+64+len(a.tail))
	b = append(b, a.name...)
	b = append(b, '=')
	b = append(b, value...)
	b = append(b, a.domain...)
	if !expires.IsZero() {
		b = append(b, "; Expires="...)
		b = appendHTTPDate(b, expires)
		b = append(b, "; Max-Age="...)
		b = strconv.AppendInt(b, int64(expires.Sub(now)/time.Second), 10)
	}
	b = append(b, a.tail...)
	// b is never written again, so it can back the string directly.
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// lastHTTPDate is the Expires date rendered last. Under load, the
// responses of one second all expire at the same second, and formatting a
// date costs more than the rest of the line.
var lastHTTPDate atomic.Pointer[httpDate]

type httpDate struct {
	unix int64
	text string
}

// appendHTTPDate appends t in the format of an Expires attribute.
func appendHTTPDate(b []byte, t time.Time) []byte {
	unix := t.Unix()
	if last := lastHTTPDate.Load(); last != nil && last.unix == unix {
		return append(b, last.text...)
	}
	text := t.UTC().Format(http.TimeFormat)
	lastHTTPDate.Store(&httpDate{unix: unix, text: text})
	return append(b, text...)
}

// deleteLine renders a Set-Cookie value that deletes the cookie, with the
// same name, Domain, Path, Secure, SameSite and Partitioned it was set with.
func (a *cookieAttributes) deleteLine() string {
	return a.name + "=" + a.domain + "; Expires=" + deletionExpires + "; Max-Age=0" + a.tail
}

// deleteLines renders the Set-Cookie values that delete the cookie and,
// unless signature is "", the signature cookie of a SignedPair codec's
// pair (SignatureCookie(codec, name)), both with the attributes they were
// set with: the value's first.
func (a *cookieAttributes) deleteLines(signature string) []string {
	if signature == "" {
		return []string{a.deleteLine()}
	}
	sigAttrs := *a
	sigAttrs.name = signature
	return []string{a.deleteLine(), sigAttrs.deleteLine()}
}

// deleteLines renders the Set-Cookie values that delete m's session cookie,
// with its codec's signature cookie when it keeps one. Only the cookie
// itself: not the numbered parts of a split session (deletePartLines).
func (m *Manager) deleteLines() []string { return m.attrs.deleteLines(m.signatureCookie()) }

// AddVaryCookie makes h vary by Cookie, merging into an existing Vary
// header instead of adding a second one. It leaves h alone when it already
// varies by Cookie or by everything (*).
func AddVaryCookie(h http.Header) {
	values := h["Vary"]
	for _, v := range values {
		for field := range strings.SplitSeq(v, ",") {
			field = strings.TrimSpace(field)
			if field == "*" || strings.EqualFold(field, "Cookie") {
				return
			}
		}
	}
	for i := len(values) - 1; i >= 0; i-- {
		if strings.TrimSpace(values[i]) != "" {
			values[i] += ", Cookie"
			return
		}
	}
	h["Vary"] = []string{"Cookie"}
}
