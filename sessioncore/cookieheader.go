package sessioncore

import (
	"iter"
	"net/http"
	"strconv"
	"strings"
	"unicode"
)

// The one reader of a request's Cookie header: opening the session, taking
// its cookies out before the request goes upstream, and forwarding the
// accepted one all read a Cookie line field by field, here, so that a rule
// (such as which blanks a name is trimmed of) is written once.

// cookieField is one ';'-separated field of a Cookie line.
type cookieField struct {
	raw      string // the field, blanks around it trimmed; "" for an empty field
	name     string // as TrimCookieName trims it; the whole field when it has no '='
	value    string // surrounding quotes removed
	hasValue bool   // the field has an '='
	start    int    // where the field starts in the line
}

// cookieFields yields the fields of a Cookie line, in order.
func cookieFields(line string) iter.Seq[cookieField] {
	return func(yield func(cookieField) bool) {
		for rest, more := line, true; more; {
			f := cookieField{start: len(line) - len(rest)}
			f.raw, rest, more = strings.Cut(rest, ";")
			f.raw = strings.TrimSpace(f.raw)
			var name string
			name, f.value, f.hasValue = strings.Cut(f.raw, "=")
			f.name = TrimCookieName(name)
			if v := f.value; len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				f.value = v[1 : len(v)-1]
			}
			if !yield(f) {
				return
			}
		}
	}
}

// TrimCookieName trims from a cookie's name the blanks any common parser
// trims: "session =v" is the session cookie to net/http and to Werkzeug.
// That is Go's blanks and Python's, which also include U+001C to U+001F.
// Trimming more than a parser does only makes the gateway treat more as
// the session cookie, which is safe: it is checked, or removed.
func TrimCookieName(name string) string {
	return strings.TrimFunc(name, func(r rune) bool { return unicode.IsSpace(r) || 0x1c <= r && r <= 0x1f })
}

// requestCookies are the session's cookies in a request: the first value
// of each name, as Werkzeug reads them.
type requestCookies struct {
	main      string         // for a SignedPair codec, the value and its signature, joined
	parts     map[int]string // part number -> value
	partsSeen int            // the highest part number present
	bytes     int            // what the session's cookies take of the Cookie line
}

// cookieBytes is what a cookie adds to a Cookie line after the first:
// "; name=value".
func cookieBytes(name, value string) int { return len("; ") + len(name) + len("=") + len(value) }

// readCookies collects the session cookie called name and its parts from a
// request's Cookie headers.
func readCookies(h http.Header, name string) requestCookies { return readPair(h, name, "") }

// readCookies collects the session's cookies from a request's Cookie
// headers: for a SignedPair codec, the value and its signature cookie,
// joined by PairSeparator when the value is there (with an empty signature
// when the signature cookie is not), and counted together in the budget.
func (m *Manager) readCookies(h http.Header) requestCookies {
	return readPair(h, m.config.CookieName, m.signatureCookie())
}

// readPair reads the cookie called name, its parts and, unless signature
// is "", the signature cookie called signature.
func readPair(h http.Header, name, signature string) requestCookies {
	var rc requestCookies
	var sig string
	mainSeen, sigSeen := false, false
	for _, line := range h["Cookie"] {
		for f := range cookieFields(line) {
			switch {
			case !f.hasValue:
			case f.name == name:
				if !mainSeen {
					rc.main, mainSeen = f.value, true
					rc.bytes += cookieBytes(f.name, f.value)
				}
			case signature != "" && f.name == signature:
				if !sigSeen {
					sig, sigSeen = f.value, true
					rc.bytes += cookieBytes(f.name, f.value)
				}
			case IsCookiePart(f.name, name):
				n, _ := strconv.Atoi(f.name[len(name)+1:])
				if rc.parts == nil {
					rc.parts = map[int]string{}
				}
				if _, dup := rc.parts[n]; !dup {
					rc.parts[n] = f.value
					rc.bytes += cookieBytes(f.name, f.value)
				}
				rc.partsSeen = max(rc.partsSeen, n)
			}
		}
	}
	if rc.bytes > 0 {
		rc.bytes -= len("; ") // the first cookie of a line has no separator
	}
	if signature != "" && rc.main != "" {
		rc.main += PairSeparator + sig
	}
	return rc
}

// signatureCookie returns the name of the signature cookie of the codec's
// pair, or "" when the codec keeps none (see SignedPair).
func (m *Manager) signatureCookie() string { return SignatureCookie(m.codec, m.config.CookieName) }

// removeCookies drops from a request's Cookie lines the cookies drop
// selects, and lines left empty. Lines that keep all their cookies are
// neither copied nor rewritten.
func removeCookies(h http.Header, drop func(name string) bool) {
	lines := h["Cookie"]
	var kept []string
	changed := false
	for i, line := range lines {
		rest, lineChanged := withoutCookies(line, drop)
		if lineChanged && !changed {
			changed = true
			kept = append(make([]string, 0, len(lines)), lines[:i]...)
		}
		if changed && rest != "" {
			kept = append(kept, rest)
		}
	}
	switch {
	case !changed:
	case len(kept) == 0:
		delete(h, "Cookie")
	default:
		h["Cookie"] = kept
	}
}

// withoutCookies returns a Cookie line without the cookies drop selects
// and without empty fields, and whether that changed it. An unchanged line
// comes back as it was, without being copied.
func withoutCookies(line string, drop func(name string) bool) (string, bool) {
	var b strings.Builder
	changed := false
	for f := range cookieFields(line) {
		switch {
		case f.raw == "" || drop(f.name):
			if !changed {
				// Every field before this one is kept as it was.
				changed = true
				b.WriteString(strings.TrimSpace(strings.TrimSuffix(line[:f.start], ";")))
			}
		case changed:
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(f.raw)
		}
	}
	if !changed {
		return line, false
	}
	return b.String(), true
}

// removeSessionCookies drops the session cookie and its parts from a
// request before it goes upstream: the upstream has the session in clear,
// and the sealed cookie only adds to the request's size (field lessons:
// oauth2-proxy#388).
func (m *Manager) removeSessionCookies(h http.Header) {
	if len(h["Cookie"]) == 0 {
		return
	}
	name, signature := m.config.CookieName, m.signatureCookie()
	removeCookies(h, func(cookieName string) bool {
		return cookieName == name || IsCookiePart(cookieName, name) || signature != "" && cookieName == signature
	})
}

// forwardSessionCookie leaves for an upstream that reads the session
// cookie itself the value the gateway accepted, and only that one: first,
// on a single Cookie line, before the client's other cookies. Parsers
// disagree on what else a client can send (Werkzeug lets a quoted value
// hide a ';', parsers trim different blanks from a name, Werkzeug's server
// joins several Cookie lines with ','), but each reads the first cookie of
// such a line as the gateway wrote it. A SignedPair codec's value is
// forwarded as its two cookies, the value then the signature.
func (m *Manager) forwardSessionCookie(h http.Header, value string) {
	m.removeSessionCookies(h)
	var b strings.Builder
	b.WriteString(m.config.CookieName)
	b.WriteByte('=')
	if signature := m.signatureCookie(); signature != "" {
		value, sig, _ := SplitPair(value)
		b.WriteString(value)
		b.WriteString("; ")
		b.WriteString(signature)
		b.WriteByte('=')
		b.WriteString(sig)
	} else {
		b.WriteString(value)
	}
	for _, line := range h["Cookie"] {
		b.WriteString("; ")
		b.WriteString(line)
	}
	h["Cookie"] = []string{b.String()}
}
