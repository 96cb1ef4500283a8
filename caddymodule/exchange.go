package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// exchange is one request's trip through the handler: the session it
// opened, the response writer it hands on, and what it needs to finish the
// response; all in one allocation.
type exchange struct {
	responseWriter
	h       *Handler
	ctx     context.Context // the request's, for the store
	session *sessioncore.Session
	// before is the response header as it was when the request reached
	// the handler (set by earlier handlers: Server, HSTS, CORS...), as a
	// shallow copy: a handler that sets a header replaces its values
	// rather than writing into them. A rejected response is reduced to it.
	before     []headerField
	beforeRoom [4]headerField // before's storage for the usual few fields (Server, Alt-Svc...)
	// published is the session as later handlers see it (publishSession).
	published requestSession
}

// headerField is one field of a header: its name and its values.
type headerField struct {
	name   string
	values []string
}

// snapshotHeader records header in ex.before.
func (ex *exchange) snapshotHeader(header http.Header) {
	ex.before = ex.beforeRoom[:0]
	for name, values := range header {
		ex.before = append(ex.before, headerField{name, values})
	}
}

// owns implements finisher.
func (ex *exchange) owns(name string) bool { return ex.h.gateway.Owns(name) }

// finish applies the upstream's changes to the session and saves it into
// the response header. It runs just before the final header is written. On
// error the response is rejected: the header is reduced to what it was
// before the upstream answered, and the returned error tells Caddy which
// status to answer with.
func (ex *exchange) finish(status int, header http.Header) error {
	d := ex.h.gateway.Depart(ex.ctx, ex.session, header)
	switch {
	case d.Rejected:
		metrics.mutations.inc("rejected")
	case d.Applied:
		metrics.mutations.inc("applied")
	}
	if d.Refused != nil {
		return ex.reject(header, d.Status, d.Reason, d.Refused, status)
	}
	if d.Action != sessioncore.CookieUntouched {
		metrics.cookies.inc(cookieAction(d.Action, ex.session.Modified()))
	}
	if d.Action == sessioncore.CookieSet {
		// The session's lines come first, then any that delete stale parts.
		for _, line := range d.Lines {
			if !strings.Contains(line, "; Max-Age=0") {
				metrics.cookieSize.Observe(float64(len(line)))
			}
		}
	}
	if c := ex.h.logger.Check(zapcore.DebugLevel, "session saved"); c != nil {
		c.Write(zap.String("cookie", string(d.Action)), zap.Bool("modified", ex.session.Modified()), zap.Int("status", status))
	}
	return nil
}

func (ex *exchange) reject(header http.Header, status int, msg string, err error, upstreamStatus int) error {
	metrics.cookies.inc("suppressed")
	ex.restoreHeader(header)
	ex.h.logger.Error(msg, zap.Error(err), zap.Int("upstream_status", upstreamStatus), zap.Int("status", status))
	return caddyhttp.Error(status, fmt.Errorf("%s: %w", msg, err))
}

// restoreHeader reduces header to what it was before the upstream answered.
func (ex *exchange) restoreHeader(header http.Header) {
	clear(header)
	for _, f := range ex.before {
		header[f.name] = f.values
	}
}

// stripTrailers removes the protocol's headers that were set after the
// header was written, which net/http would send as trailers. A change sent
// that way comes too late to save and is logged, not applied.
func (ex *exchange) stripTrailers(header http.Header) {
	for name := range header {
		if ex.h.gateway.Owns(strings.TrimPrefix(name, http.TrailerPrefix)) {
			delete(header, name)
			ex.h.logger.Warn("session header sent as a trailer was ignored; send it before the body", zap.String("header", name))
		}
	}
}
