package sessioncore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxCookieParts is how many cookies one session may be split over
// by default.
const DefaultMaxCookieParts = 4

// maxPartIndex bounds the part numbers read from a request.
const maxPartIndex = 16

// A session too large for one cookie is split over numbered cookies: the
// first keeps the configured name and its value starts with the number of
// parts and '!' ("3!..."), the others are called <name>.1, <name>.2, ...
// Neither '!' nor digits followed by '!' can start a sealed value of either
// codec, so a value is read as chunked only when it says so.
const chunkCountSep = '!'

// MaxCookiePartsLimit is the most cookies a session may be split over.
const MaxCookiePartsLimit = maxPartIndex

// The budget for the session's cookies, in the bytes they add to the
// Cookie line a browser sends back ("name=value", joined by "; "). Every
// request carries them, and servers refuse a request whose headers are
// too large (Caddy: 16 KiB of headers by default, with 431; nginx: 8 KiB
// for one header line; Apache: 8190 bytes): a session the gateway issued
// over such a limit would lock its user out of the site, logout included.
// The default leaves a Cookie line of 8 KiB room for 4 KiB of the site's
// other cookies.
const (
	DefaultMaxCookieBytes = 4096
	MinCookieBytes        = 512                        // a store's ID cookie fits with room to spare
	MaxCookieBytesLimit   = MaxCookiePartsLimit * 4096 // as many parts as can be read, each full
)

// IsCookiePart reports whether cookieName is a numbered part (<name>.1 to
// <name>.16) of the session cookie called name.
func IsCookiePart(cookieName, name string) bool {
	index, ok := strings.CutPrefix(cookieName, name+".")
	if !ok {
		return false
	}
	n, err := strconv.Atoi(index)
	return err == nil && n >= 1 && n <= maxPartIndex && strconv.Itoa(n) == index
}

// partName returns the name of part k (k >= 1) of the cookie called name.
func partName(name string, k int) string { return name + "." + strconv.Itoa(k) }

// value joins the main cookie with its parts when it is chunked.
func (rc requestCookies) value(maxParts int) (string, error) {
	count, rest, chunked := strings.Cut(rc.main, string(chunkCountSep))
	if !chunked || count == "" || len(count) > 2 {
		return rc.main, nil
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 2 || n > maxPartIndex {
		return "", fmt.Errorf("%w: the cookie says it has %q parts", ErrBadSignature, count)
	}
	if n > maxParts {
		return "", fmt.Errorf("%w: the cookie has %d, the limit is %d", errTooManyParts, n, maxParts)
	}
	var b strings.Builder
	b.WriteString(rest)
	for k := 1; k < n; k++ {
		part, ok := rc.parts[k]
		if !ok {
			return "", fmt.Errorf("%w: part %d of %d is missing", ErrBadSignature, k, n)
		}
		b.WriteString(part)
	}
	return b.String(), nil
}

// chunkLines renders the Set-Cookie lines of value, split over as few
// cookies as fit in MaxCookieSize each, at most maxParts, together at most
// budget bytes of the Cookie line a browser sends back. With a signature
// cookie's name (a SignedPair codec's), value is the pair and renders as
// its two cookies, never split. It returns ErrCookieTooLarge when they
// would not do.
func (a *cookieAttributes) chunkLines(value, signature string, now, expires time.Time, maxParts, budget int) ([]string, error) {
	if signature != "" {
		return a.pairLines(value, signature, now, expires, budget)
	}
	if line := a.setLine(value, now, expires); len(line) <= MaxCookieSize {
		if sent := cookieBytes(a.name, value) - len("; "); sent > budget {
			return nil, overBudget(sent, budget)
		}
		return []string{line}, nil
	}
	if maxParts < 2 {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrCookieTooLarge, len(a.setLine(value, now, expires)), MaxCookieSize)
	}
	// The room left in a line for a chunk, measured on the longest name
	// and with the "N!" prefix counted everywhere: simple and safe.
	probe := *a
	probe.name = partName(a.name, maxParts)
	room := MaxCookieSize - len(probe.setLine("", now, expires)) - 2
	if room < 64 { // attributes (a very long Path, say) leave no room
		return nil, fmt.Errorf("%w: the cookie's attributes leave no room for its value", ErrCookieTooLarge)
	}
	parts := (len(value) + room - 1) / room
	if parts > maxParts {
		return nil, fmt.Errorf("%w: %d bytes would need %d cookies, the limit is %d", ErrCookieTooLarge, len(value), parts, maxParts)
	}
	lines := make([]string, 0, parts)
	sent := -len("; ")
	for k := 0; k < parts; k++ {
		chunk := value[k*room : min((k+1)*room, len(value))]
		part := *a
		if k == 0 {
			chunk = strconv.Itoa(parts) + string(chunkCountSep) + chunk
		} else {
			part.name = partName(a.name, k)
		}
		sent += cookieBytes(part.name, chunk)
		lines = append(lines, part.setLine(chunk, now, expires))
	}
	if sent > budget {
		return nil, overBudget(sent, budget)
	}
	return lines, nil
}

// pairLines renders the two Set-Cookie lines of a SignedPair codec's
// value, the value's then the signature's, with the same attributes.
func (a *cookieAttributes) pairLines(pair, signature string, now, expires time.Time, budget int) ([]string, error) {
	value, sig, ok := SplitPair(pair)
	if !ok {
		return nil, fmt.Errorf("the codec's value is not a pair (no %q)", PairSeparator)
	}
	sigAttrs := *a
	sigAttrs.name = signature
	lines := []string{a.setLine(value, now, expires), sigAttrs.setLine(sig, now, expires)}
	for _, line := range lines {
		if len(line) > MaxCookieSize {
			return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrCookieTooLarge, len(line), MaxCookieSize)
		}
	}
	if sent := cookieBytes(a.name, value) - len("; ") + cookieBytes(signature, sig); sent > budget {
		return nil, overBudget(sent, budget)
	}
	return lines, nil
}

func overBudget(sent, budget int) error {
	return fmt.Errorf("%w: the browser would send back %d bytes of session cookies, the budget (max_cookie_bytes) is %d", ErrCookieTooLarge, sent, budget)
}

// errTooManyParts marks a request's session split over more cookies than
// the configuration allows: an older configuration's.
var errTooManyParts = errors.New("too many parts")

// deletePartLines renders the lines that delete parts from..to.
func (a *cookieAttributes) deletePartLines(from, to int) []string {
	var lines []string
	for k := from; k <= to; k++ {
		part := *a
		part.name = partName(a.name, k)
		lines = append(lines, part.deleteLine())
	}
	return lines
}
