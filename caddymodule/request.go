package caddymodule

import (
	"io"
	"net/http"
	"strings"
)

// protectRequest keeps a client from speaking for the gateway through
// request trailers: announced trailers of the protocol are dropped now, and
// any that arrive with the body are dropped when it ends, before a proxy
// copies them on.
func (h *Handler) protectRequest(r *http.Request) {
	if r.Trailer != nil {
		h.protocol.Strip(r.Trailer)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerGuard{ReadCloser: r.Body, req: r, strip: h.protocol.Strip}
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

// removeSessionCookie drops the session cookie from the request before it
// goes upstream: the upstream has the session in clear, and the sealed
// cookie only adds to the request's size (field lessons: oauth2-proxy#388).
func (h *Handler) removeSessionCookie(r *http.Request) {
	lines := r.Header["Cookie"]
	if len(lines) == 0 {
		return
	}
	name := h.iface.CookieName()
	var kept []string
	for _, line := range lines {
		var parts []string
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			cookieName, _, _ := strings.Cut(part, "=")
			if part != "" && cookieName != name {
				parts = append(parts, part)
			}
		}
		if len(parts) > 0 {
			kept = append(kept, strings.Join(parts, "; "))
		}
	}
	if len(kept) == 0 {
		r.Header.Del("Cookie")
		return
	}
	r.Header["Cookie"] = kept
}
