package sessioncore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"
)

// Gateway runs the session side of a request through a reverse proxy, in
// the order Flask's rules and the gateway's safety need: Arrive when the
// request comes in, Depart when the upstream's final response header is
// ready. A server's glue calls the two and maps what they return to
// responses, logs and metrics. It is safe for concurrent use.
type Gateway struct {
	manager       *Manager
	protocol      *headerProtocol
	forward       []ForwardHeader
	forwardCookie bool
	failOpen      bool
	crossOrigin   *http.CrossOriginProtection
	onWithheld    func(reason string)
	logger        *zap.Logger
	migrations    []Migration
	// exposeSessionList and recordClientIP: see GatewayConfig.
	exposeSessionList, recordClientIP bool
	onRevoke                          func(kind string)
	assertion                         *Asserter
	assertionName                     string // the assertion's request header
	view                              *View
	rules                             *WriteRules
	onOpen                            func(r *http.Request, s *Session)
	ownHeaders                        []string
	// stripped are the headers stripForwarded removes: the forwarded
	// ones, an assertion header outside the protocol, ownHeaders.
	stripped []string
}

// GatewayConfig configures a Gateway.
type GatewayConfig struct {
	// HeaderPrefix is the prefix of the headers that carry the session
	// (see CheckHeaderPrefix); empty means DefaultHeaderPrefix, X-Session.
	HeaderPrefix string
	// Forward sends session values to the upstream in headers of their
	// own, such as the user in X-Remote-User.
	Forward []ForwardHeader
	// ForwardCookie passes the session cookie the gateway accepted on to
	// the upstream (a Flask app reads it); otherwise it is removed.
	ForwardCookie bool
	// FailOpen lets a request whose session store cannot be read through
	// with a null session; otherwise it is refused with 503.
	FailOpen bool
	// CrossOrigin, when set, refuses unsafe cross-origin requests with 403.
	CrossOrigin *http.CrossOriginProtection
	// OnWithheld is told the reason of every forwarded value withheld
	// (see IdentityWithheld), for metrics.
	OnWithheld func(reason string)
	// Logger receives the gateway's debug lines and warnings; nil: none.
	Logger *zap.Logger
	// Migrations are legacy cookie formats whose sessions are carried over
	// when the request has no valid session of the gateway's own format.
	Migrations []Migration
	// OnRevoke is told the kind (others, all) of every revocation an
	// upstream asked for, for metrics.
	OnRevoke func(kind string)
	// ExposeSessions hands the upstream the list of the user's sessions
	// in X-Session-List (with a store that keeps a user index).
	ExposeSessions bool
	// RecordClientIP keeps each session's client address in the store's
	// user index; off, none is kept.
	RecordClientIP bool
	// Assertion, when set, signs the session for the upstream, sent in
	// the request header AssertionHeader (see Asserter).
	Assertion       *Asserter
	AssertionHeader string
	// View limits what of the session the upstream is sent (see View);
	// WriteRules what it may change (see WriteRules).
	View       *View
	WriteRules *WriteRules
	// OnOpen, when set, is called with each request's session once it is
	// open (never a null one), before anything of it is handed to the
	// upstream: a login refreshes its tokens there, or ends. It may set
	// the request headers named in OwnHeaders, which are removed, in
	// every spelling, from what the client sent.
	OnOpen     func(r *http.Request, s *Session)
	OwnHeaders []string
}

// ForwardHeader sends the session value under Key to the upstream in the
// request header Header.
type ForwardHeader struct {
	Key, Header string
}

// NewGateway returns the gateway of manager's sessions.
func NewGateway(manager *Manager, c GatewayConfig) (*Gateway, error) {
	g := &Gateway{
		manager: manager, forwardCookie: c.ForwardCookie, failOpen: c.FailOpen,
		crossOrigin: c.CrossOrigin, onWithheld: c.OnWithheld, logger: c.Logger, onRevoke: c.OnRevoke,
		exposeSessionList: c.ExposeSessions, recordClientIP: c.RecordClientIP,
	}
	var err error
	if g.protocol, err = newHeaderProtocol(cmp.Or(c.HeaderPrefix, DefaultHeaderPrefix)); err != nil {
		return nil, err
	}
	if g.logger == nil {
		g.logger = zap.NewNop()
	}
	if g.onWithheld == nil {
		g.onWithheld = func(string) {}
	}
	for i, f := range c.Forward {
		if err := g.checkForwardHeader(f); err != nil {
			return nil, err
		}
		if slices.ContainsFunc(c.Forward[:i], func(e ForwardHeader) bool { return SameHeaderName(e.Header, f.Header) }) {
			return nil, fmt.Errorf("forward: header %s is given twice", f.Header)
		}
	}
	g.forward = slices.Clone(c.Forward)
	for i := range g.forward {
		// Set directly, without canonicalizing on every request.
		g.forward[i].Header = http.CanonicalHeaderKey(g.forward[i].Header)
	}
	for _, h := range c.OwnHeaders {
		if err := g.checkForwardHeader(ForwardHeader{Key: "-", Header: h}); err != nil {
			return nil, err
		}
		if slices.ContainsFunc(c.Forward, func(e ForwardHeader) bool { return SameHeaderName(e.Header, h) }) {
			return nil, fmt.Errorf("header %s is both forwarded and the gateway's own", h)
		}
	}
	g.onOpen, g.ownHeaders = c.OnOpen, slices.Clone(c.OwnHeaders)
	if err := checkMigrations(manager, c.Migrations); err != nil {
		return nil, err
	}
	g.migrations = slices.Clone(c.Migrations)
	if err := c.View.check(); err != nil {
		return nil, fmt.Errorf("send/hide: %w", err)
	}
	if err := c.WriteRules.check(); err != nil {
		return nil, fmt.Errorf("writable/readonly: %w", err)
	}
	g.view, g.rules = c.View, c.WriteRules
	if g.view.active() && g.forwardCookie {
		// The cookie holds the whole session, readable by the upstream
		// for the formats shared with an app.
		return nil, errors.New("send and hide cannot hide anything from an upstream that gets the session cookie: set forward_cookie false")
	}
	if c.Assertion != nil {
		if err := g.checkAssertionHeader(c.AssertionHeader); err != nil {
			return nil, err
		}
		g.assertion, g.assertionName = c.Assertion, http.CanonicalHeaderKey(c.AssertionHeader)
	}
	for _, f := range g.forward {
		g.stripped = append(g.stripped, f.Header)
	}
	if g.assertionName != "" && !g.protocol.Owns(g.assertionName) {
		g.stripped = append(g.stripped, g.assertionName)
	}
	g.stripped = append(g.stripped, g.ownHeaders...)
	return g, nil
}

// Arrival is what Arrive made of a request.
type Arrival struct {
	// Session is the request's session, also when it is refused; nil when
	// it was refused before the session was opened.
	Session *Session
	// Outcome says how the session was opened; "" when it was not.
	Outcome Outcome
	// Refused, when set, says why the request must be answered with
	// Status rather than passed on: 403 for a cross-origin request, 503
	// for a store that cannot be read.
	Refused error
	Status  int
}

// Arrive prepares a request for the upstream. First of all, whatever a
// client sent to speak for the gateway goes (the protocol's headers, the
// forwarded ones, in any spelling, also from the Connection and Trailer
// lists and from the trailers). Then it checks the request's origin, opens
// the session, and hands it to the upstream: the session header, the
// status and ID headers, the forwarded values, and the session cookie
// itself only when it was accepted and the upstream reads it. response is
// the response's header, which a store outage makes vary by Cookie.
func (g *Gateway) Arrive(r *http.Request, response http.Header) Arrival {
	g.protect(r)
	if g.crossOrigin != nil {
		if err := g.crossOrigin.Check(r); err != nil {
			return Arrival{Refused: err, Status: http.StatusForbidden}
		}
	}
	s, outcome, cookie := g.manager.open(r)
	if len(g.migrations) > 0 {
		s, outcome = g.migrate(r, s, outcome)
	}
	if c := g.logger.Check(zapcore.DebugLevel, "session opened"); c != nil {
		c.Write(zap.String("outcome", string(outcome)), zap.Int("keys", s.Len()))
	}
	a := Arrival{Session: s, Outcome: outcome}
	if storeDown := errors.Is(s.Unavailable(), ErrStore); storeDown {
		if !g.failOpen {
			a.Refused, a.Status = s.Unavailable(), http.StatusServiceUnavailable
			return a
		}
		// The page depends on the cookie all the same: a shared cache
		// must not hand this anonymous answer to users with sessions.
		AddVaryCookie(response)
	}
	if g.onOpen != nil && !s.IsNull() {
		g.onOpen(r, s)
	}

	// The upstream is handed the whole session, so it counts as accessed:
	// every response through here varies by Cookie.
	s.MarkAccessed()
	h := r.Header
	g.setSessionHeader(h, s)
	if s.IsNull() {
		h.Set(g.protocol.StatusHeader(), StatusUnavailable)
	}
	if id := s.ID(); id != "" {
		h.Set(g.protocol.IDHeader(), id)
	}
	g.forwardIdentity(h, s)
	if !s.IsNull() && g.manager.store != nil && g.manager.userKey != "" {
		g.noteDevice(r, s)
		if g.exposeSessionList {
			g.exposeSessions(r.Context(), h, s)
		}
	}
	if g.assertion != nil && !s.IsNull() {
		g.assert(r, s)
	}
	// A cookie the gateway did not accept (forged, expired, revoked) never
	// reaches an upstream that reads it itself, as a Flask app does.
	if accepted := outcome == OutcomeValid || outcome == OutcomeFallbackKey; g.forwardCookie && accepted {
		g.manager.forwardSessionCookie(h, cookie)
	} else {
		g.manager.removeSessionCookies(h)
	}
	return a
}

// Departure is what Depart did with a response.
type Departure struct {
	// Action is what happened to the session cookie.
	Action CookieAction
	// Applied: the upstream asked for a change (mutation headers, or a
	// session cookie of its own) and it was made. Rejected: it asked for
	// one that was refused.
	Applied, Rejected bool
	// Refused, when set, says why the response must be replaced with
	// Status: 502 for the upstream's fault (a malformed mutation, an
	// unreadable session cookie of its own, a session too large), 503 for
	// a session that cannot take the change or a store that cannot save
	// it. Reason is a short line for the log.
	Refused error
	Status  int
	Reason  string
	// Lines are the Set-Cookie lines Save added to the header, the
	// session's first, then any that delete parts it no longer uses.
	Lines []string
}

// Depart applies the upstream's response to the session and writes the
// cookie into header, the response's final header: the upstream's own
// session cookie first (a Flask app sharing the cookie), its mutation
// headers on top, then Flask's save rules. Every header of the protocol
// is removed from header whatever happens. On a refusal nothing of the
// change is saved and the cookie is left alone.
func (g *Gateway) Depart(ctx context.Context, s *Session, header http.Header) Departure {
	g.protocol.StripFromList(header, "Trailer")
	mutation, err := g.protocol.TakeMutation(header)
	if err != nil {
		return Departure{Rejected: true, Refused: err, Status: http.StatusBadGateway, Reason: "malformed session mutation from upstream"}
	}
	if err := g.enforceWriteRules(s, mutation); err != nil {
		return Departure{Rejected: true, Refused: err, Status: http.StatusBadGateway, Reason: "session mutation from upstream breaks the route's write rules"}
	}
	upstreamValues, upstreamSet, err := g.manager.takeResponseCookie(header)
	if err != nil {
		return Departure{Rejected: true, Refused: err, Status: http.StatusBadGateway, Reason: "upstream session cookie rejected"}
	}
	if upstreamSet {
		if err := s.Adopt(g.enforceAdoptRules(s, upstreamValues)); err != nil {
			return Departure{Rejected: true, Refused: err, Status: http.StatusServiceUnavailable, Reason: "session change refused"}
		}
	}
	if len(g.migrations) > 0 {
		// A legacy app still running sets its own cookie: the same rule.
		adopted, err := g.adoptLegacy(s, header)
		if err != nil {
			return Departure{Rejected: true, Refused: err, Status: http.StatusBadGateway, Reason: "upstream legacy session cookie rejected"}
		}
		upstreamSet = upstreamSet || adopted
	}
	if err := s.Apply(mutation); err != nil {
		return Departure{Rejected: true, Refused: err, Status: http.StatusServiceUnavailable, Reason: "session change refused"}
	}
	if r := mutation.Revoke(); r != RevokeNone {
		// After the rest of the mutation: a login that asks to log the
		// user's other devices out revokes the user it just set.
		if err := g.manager.revoke(ctx, s, r); err != nil {
			if errors.Is(err, ErrStore) {
				return Departure{Refused: err, Status: http.StatusServiceUnavailable, Reason: "session revocation cannot be saved"}
			}
			return Departure{Rejected: true, Refused: err, Status: http.StatusBadGateway, Reason: "malformed session mutation from upstream"}
		}
		if g.onRevoke != nil {
			g.onRevoke(string(r))
		}
	}
	changed := upstreamSet || !mutation.IsEmpty()
	before := len(header["Set-Cookie"])
	action, err := g.manager.Save(ctx, s, header)
	switch {
	case errors.Is(err, ErrStore):
		// Never drop a change silently: the client learns it was not saved.
		return Departure{Refused: err, Status: http.StatusServiceUnavailable, Reason: "session cannot be saved"}
	case err != nil:
		return Departure{Rejected: changed, Refused: err, Status: http.StatusBadGateway, Reason: "session cannot be saved"}
	}
	if len(g.migrations) > 0 && !s.IsNull() {
		if err := g.saveLegacy(ctx, s, action, header); err != nil {
			return Departure{Refused: err, Status: http.StatusBadGateway, Reason: "legacy session cookie cannot be saved"}
		}
	}
	d := Departure{Action: action, Applied: changed, Lines: header["Set-Cookie"][before:]}
	if cc := header["Cache-Control"]; len(d.Lines) > 0 && (len(cc) == 0 || cc[0] == "") {
		// A shared cache must not store one user's cookie for others.
		header["Cache-Control"] = []string{"private"}
	}
	return d
}

// StripResponse removes every header of the protocol from a response's
// header, as Depart does: for a response that does not get as far (the
// next handler failed).
func (g *Gateway) StripResponse(header http.Header) { g.protocol.Strip(header) }

// Owns reports whether the header called name belongs to the protocol.
func (g *Gateway) Owns(name string) bool { return g.protocol.Owns(name) }

// protect keeps a client from speaking for the gateway: the protocol's
// headers and the forwarded ones go in every spelling, from the header,
// from the Connection and Trailer lists, and from the request trailers:
// announced ones now, any that arrive with the body when it ends, before a
// proxy copies them on.
func (g *Gateway) protect(r *http.Request) {
	g.stripOwned(r.Header)
	g.protocol.StripFromList(r.Header, "Connection")
	g.protocol.StripFromList(r.Header, "Trailer")
	if r.Trailer != nil {
		g.stripOwned(r.Trailer)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerGuard{ReadCloser: r.Body, req: r, strip: g.stripOwned}
	}
}

// stripOwned removes every header the gateway sets itself.
func (g *Gateway) stripOwned(header http.Header) {
	g.protocol.Strip(header)
	g.stripForwarded(header)
}

// stripForwarded removes every spelling of the forwarded identity headers,
// of an assertion header outside the protocol and of the headers OnOpen
// sets, from the header map and from the Connection and Trailer lists, in
// one pass over the header.
func (g *Gateway) stripForwarded(header http.Header) {
	if len(g.stripped) == 0 {
		return
	}
	for name := range header {
		if g.strips(name) {
			delete(header, name)
		}
	}
	for _, list := range [...]string{"Connection", "Trailer"} {
		if _, ok := header[list]; ok {
			removeFromHeaderList(header, list, g.strips)
		}
	}
}

// strips reports whether stripForwarded removes the header called name.
func (g *Gateway) strips(name string) bool {
	for _, h := range g.stripped {
		if SameHeaderName(name, h) {
			return true
		}
	}
	return false
}

// forwardIdentity sets the forwarded identity headers from the session: a
// value is sent only when the upstream will read exactly what the session
// matcher sees (IdentityWithheld), and only when the matcher counts it as
// set.
func (g *Gateway) forwardIdentity(h http.Header, s *Session) {
	for _, f := range g.forward {
		raw, ok := s.Get(f.Key)
		if !ok || !truthyValue(raw) {
			continue // a value the matcher counts as unset is not sent
		}
		value := ValueText(raw)
		if reason := IdentityWithheld(value); reason != "" {
			g.onWithheld(reason)
			g.logger.Warn("session value not forwarded: the upstream would not read it as the gateway does",
				zap.String("key", f.Key), zap.String("header", f.Header), zap.String("reason", reason))
			continue
		}
		h[f.Header] = []string{value} // canonical since New
	}
}

// trailerGuard removes the gateway's headers from the request's trailers
// as soon as the body is read to its end, which is when net/http fills them.
type trailerGuard struct {
	io.ReadCloser
	req   *http.Request
	strip func(http.Header)
}

func (t *trailerGuard) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF && t.req.Trailer != nil {
		t.strip(t.req.Trailer)
	}
	return n, err
}

// reservedHeaders may not carry a forwarded value: the gateway would strip
// them from every request before reading them (Cookie: the session itself),
// or they steer the connection rather than carry data.
var reservedHeaders = []string{
	"Cookie", "Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Trailer", "TE",
	"Connection", "Keep-Alive", "Proxy-Connection", "Upgrade", "Proxy-Authorization", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
}

// CheckForwardHeader refuses a header name that cannot carry a forwarded
// session value: an invalid name, or a reserved one.
func CheckForwardHeader(name string) error {
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("forward: %q is not a valid header name", name)
	}
	if slices.ContainsFunc(reservedHeaders, func(r string) bool { return SameHeaderName(r, name) }) {
		return fmt.Errorf("forward: %s is reserved: the gateway reads or strips it, or it steers the connection", name)
	}
	return nil
}

// checkForwardHeader refuses a forward whose key is empty or whose header
// is not a valid name, is reserved, or belongs to the protocol.
func (g *Gateway) checkForwardHeader(f ForwardHeader) error {
	if err := CheckForwardHeader(f.Header); err != nil {
		return err
	}
	if f.Key == "" {
		return fmt.Errorf("forward %s: the session key is empty", f.Header)
	}
	if g.protocol.Owns(f.Header) {
		return fmt.Errorf("forward: %s belongs to the session's own headers (%s)", f.Header, g.protocol.SessionHeader())
	}
	return nil
}
