package caddymodule

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// placeholderPrefix is the prefix of the placeholders that expose the
// session's keys to later handlers: {http.session.<key>}.
const placeholderPrefix = "http.session."

// sessionVar is the request variable (caddyhttp.SetVar) under which the
// handler leaves the session it opened, for the session matcher of later
// routes. A variable rather than a context value: setting it copies
// nothing.
const sessionVar = "sessiongate.session"

// requestSession holds the session of one request. It holds nothing but a
// pointer, so that even {http.vars.sessiongate.session} shows an address,
// never the session.
type requestSession struct{ session *sessioncore.Session }

// publishSession makes s the session of r for the handlers after this
// one: the session matcher, and the {http.session.<key>} placeholders,
// which read s when they are used, so they always show the session as it
// is (the upstream's changes included) and cost nothing when unused, as
// on most requests. held is where s is kept for them, unless a first
// session handler on the same request published one already: then s
// replaces that one.
func publishSession(r *http.Request, repl *caddy.Replacer, held *requestSession, s *sessioncore.Session) {
	// caddyhttp.GetVar and SetVar, with one walk up the context.
	vars, _ := r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any)
	if first, ok := vars[sessionVar].(*requestSession); ok {
		first.session = s
		return
	}
	held.session = s
	if vars != nil {
		vars[sessionVar] = held
	}
	repl.Map(held.placeholder)
}

// sessionOf returns the session a handler opened for r, if any.
func sessionOf(r *http.Request) *sessioncore.Session {
	if held, ok := caddyhttp.GetVar(r.Context(), sessionVar).(*requestSession); ok {
		return held.session
	}
	return nil
}

// placeholder is a caddy.ReplacerFunc for {http.session.<key>}: a string
// value is the string itself, any other value its JSON text, with control
// characters made spaces (sessioncore.HeaderSafe), since a placeholder may
// land in a response header. A key the session does not have is not a
// known placeholder.
func (held *requestSession) placeholder(name string) (any, bool) {
	key, ok := strings.CutPrefix(name, placeholderPrefix)
	if !ok {
		return nil, false
	}
	raw, ok := held.session.Get(key)
	if !ok {
		return nil, false
	}
	return sessioncore.HeaderSafe(sessioncore.ValueText(raw)), true
}
