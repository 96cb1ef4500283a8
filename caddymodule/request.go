package caddymodule

import (
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// protectRequest keeps a client from speaking for the gateway: the
// forwarded identity headers go in every spelling (the protocol's own
// headers go in HeaderProtocol.WriteRequest), and so do both kinds from the
// request trailers: announced ones now, any that arrive with the body when
// it ends, before a proxy copies them on.
func (h *Handler) protectRequest(r *http.Request) {
	h.protocol.Strip(r.Header)
	h.protocol.StripFromList(r.Header, "Connection")
	h.protocol.StripFromList(r.Header, "Trailer")
	h.stripForwarded(r.Header)
	if r.Trailer != nil {
		h.stripOwned(r.Trailer)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerGuard{ReadCloser: r.Body, req: r, strip: h.stripOwned}
	}
}

// stripOwned removes every header the gateway sets itself.
func (h *Handler) stripOwned(header http.Header) {
	h.protocol.Strip(header)
	h.stripForwarded(header)
}

// stripForwarded removes every spelling of the forwarded identity headers,
// from the header map and from the Connection and Trailer lists.
func (h *Handler) stripForwarded(header http.Header) {
	for _, f := range h.Forward {
		for name := range header {
			if sessioncore.SameHeaderName(name, f.Header) {
				delete(header, name)
			}
		}
		for _, list := range []string{"Connection", "Trailer"} {
			sessioncore.RemoveFromHeaderList(header, list, func(token string) bool { return sessioncore.SameHeaderName(token, f.Header) })
		}
	}
}

// forwardIdentity sets the forwarded identity headers from the session: a
// value is sent only when the upstream will read exactly what the session
// matcher sees (sessioncore.IdentityWithheld), and only when the matcher
// counts it as set.
func (h *Handler) forwardIdentity(r *http.Request, s *sessioncore.Session) {
	for _, f := range h.Forward {
		if !s.Has(f.Key) {
			continue
		}
		value, _ := s.Text(f.Key)
		if reason := sessioncore.IdentityWithheld(value); reason != "" {
			metrics.withheld.inc(reason)
			h.logger.Warn("session value not forwarded: the upstream would not read it as the gateway does",
				zap.String("key", f.Key), zap.String("header", f.Header), zap.String("reason", reason))
			continue
		}
		r.Header.Set(f.Header, value)
	}
}

// trailerGuard removes the protocol's headers from the request's trailers
// as soon as the body is read to its end, which is when net/http fills them.
type trailerGuard struct {
	io.ReadCloser
	req   *http.Request
	strip func(http.Header)
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF && g.req.Trailer != nil {
		g.strip(g.req.Trailer)
	}
	return n, err
}

// removeSessionCookies drops the session cookie and its parts from the
// request before it goes upstream: the upstream has the session in clear,
// and the sealed cookie only adds to the request's size (field lessons:
// oauth2-proxy#388).
func (h *Handler) removeSessionCookies(r *http.Request) {
	lines := r.Header["Cookie"]
	if len(lines) == 0 {
		return
	}
	name := h.sessions.CookieName()
	drop := func(cookieName string) bool {
		return cookieName == name || sessioncore.IsCookiePart(cookieName, name)
	}
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
		r.Header.Del("Cookie")
	default:
		r.Header["Cookie"] = kept
	}
}

// forwardSessionCookie leaves for an upstream that reads the session
// cookie itself the value the gateway accepted, and only that one: first,
// on a single Cookie line, before the client's other cookies. Parsers
// disagree on what else a client can send (Werkzeug lets a quoted value
// hide a ';', parsers trim different blanks from a name, Werkzeug's server
// joins several Cookie lines with ','), but each reads the first cookie of
// such a line as the gateway wrote it.
func (h *Handler) forwardSessionCookie(r *http.Request, value string) {
	h.removeSessionCookies(r)
	var b strings.Builder
	b.WriteString(h.sessions.CookieName())
	b.WriteByte('=')
	b.WriteString(value)
	for _, line := range r.Header["Cookie"] {
		b.WriteString("; ")
		b.WriteString(line)
	}
	r.Header["Cookie"] = []string{b.String()}
}

// withoutCookies returns a Cookie line without the cookies drop selects
// and without empty parts, and whether that changed it. An unchanged line
// comes back as it was, without being copied.
func withoutCookies(line string, drop func(name string) bool) (string, bool) {
	var b strings.Builder
	changed := false
	for rest, more := line, true; more; {
		start := len(line) - len(rest)
		var part string
		part, rest, more = strings.Cut(rest, ";")
		part = strings.TrimSpace(part)
		name, _, _ := strings.Cut(part, "=")
		name = sessioncore.TrimCookieName(name)
		switch {
		case part == "" || drop(name):
			if !changed {
				// Every part before this one is kept as it was.
				changed = true
				b.WriteString(strings.TrimSpace(strings.TrimSuffix(line[:start], ";")))
			}
		case changed:
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
	}
	if !changed {
		return line, false
	}
	return b.String(), true
}
