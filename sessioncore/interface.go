package sessioncore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// MaxClockSkew is how far in the future a cookie's issue time may lie and
// still be accepted. Flask accepts none; several gateways sharing one secret
// never have perfectly equal clocks, and a user must not be logged out
// because the instance that answered runs a second behind.
const MaxClockSkew = time.Minute

// ErrCookieTooLarge is returned by Save when the session would not fit in
// one cookie of MaxCookieSize bytes. Nothing is written then.
var ErrCookieTooLarge = errors.New("session cookie too large")

// ErrSessionTooLarge is returned by Save when a change would make the
// session larger than MaxSessionSize. Nothing is written then.
var ErrSessionTooLarge = errors.New("session too large")

// Outcome says how Open came by the session it returned.
type Outcome string

// The outcomes of Open. All but OutcomeValid and OutcomeFallbackKey give a
// new, empty session (OutcomeUnavailable a null one).
const (
	OutcomeNew          Outcome = "new"           // no cookie, or an empty one
	OutcomeValid        Outcome = "valid"         // opened with the current key
	OutcomeFallbackKey  Outcome = "fallback_key"  // opened with a fallback key
	OutcomeBadSignature Outcome = "bad_signature" // tampered, unknown key, garbage
	OutcomeExpired      Outcome = "expired"       // older than the lifetime, idle too long, or from the future
	OutcomeRevoked      Outcome = "revoked"       // created before RevokeBefore
	OutcomeUndecodable  Outcome = "undecodable"   // signed, but the contents are unreadable
	OutcomeUnknownID    Outcome = "unknown_id"    // a valid cookie whose ID the store does not know
	OutcomeUnavailable  Outcome = "unavailable"   // no codec, or the store failed: a null session
	OutcomeTooLarge     Outcome = "too_large"     // more or larger cookies than the config allows: deleted
)

// CookieAction says what Save did to the session cookie.
type CookieAction string

// The actions of Save.
const (
	CookieUntouched CookieAction = "untouched"
	CookieSet       CookieAction = "set"
	CookieDeleted   CookieAction = "deleted"
)

// Manager is a Go port of Flask's SessionInterface together with
// SecureCookieSessionInterface: it opens a session from a request's cookie
// and saves it into a response's headers by Flask's rules. It is safe for
// concurrent use.
type Manager struct {
	config Config
	codec  Codec
	store  Store     // nil: the session lives in the cookie
	form   ValueForm // the codec's, if it stores values in another form
	attrs  cookieAttributes
	now    func() time.Time
	logger *zap.Logger
	cache  openCache
}

// Option configures a Manager.
type Option func(*Manager)

// WithClock makes the Manager read the time from now, so expiry can be
// tested without sleeping.
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// WithStore keeps sessions in store; the cookie then carries only a signed
// session ID.
func WithStore(store Store) Option { return func(m *Manager) { m.store = store } }

// WithLogger sets the logger for the reasons a cookie was rejected, at
// debug level. Cookie values are never logged.
func WithLogger(l *zap.Logger) Option { return func(m *Manager) { m.logger = l } }

// NewManager returns a Manager for cfg that seals cookies with codec.
// A nil codec gives a Manager whose sessions are all null sessions, as
// Flask's are without a secret key.
func NewManager(cfg Config, codec Codec, opts ...Option) (*Manager, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	m := &Manager{config: cfg, codec: codec, now: time.Now, logger: zap.NewNop(), cache: newOpenCache()}
	m.form, _ = codec.(ValueForm)
	for _, opt := range opts {
		opt(m)
	}
	m.attrs = newCookieAttributes(&m.config)
	return m, nil
}

// MakeNullSession returns a null session that says reason when asked to
// change; see NewNullSession.
func (m *Manager) MakeNullSession(reason error) *Session { return NewNullSession(reason) }

// IsNullSession reports whether s is a null session. Null sessions are never saved.
func (m *Manager) IsNullSession(s *Session) bool { return s.IsNull() }

// CookieName returns the session cookie's name.
func (m *Manager) CookieName() string { return m.config.CookieName }

// RequestCookie returns the value of the session cookie in a request's
// headers as Open reads it: the first cookie of the name (blanks around
// the name allowed, quotes around the value removed), the first part of a
// split one.
func (m *Manager) RequestCookie(h http.Header) string {
	return readCookies(h, m.config.CookieName).main
}

// CookieDomain returns the cookie's Domain attribute, empty when it has none.
func (m *Manager) CookieDomain() string { return m.config.CookieDomain }

// CookiePath returns the cookie's Path attribute.
func (m *Manager) CookiePath() string { return m.config.CookiePath }

// CookieHTTPOnly reports whether the cookie is HttpOnly.
func (m *Manager) CookieHTTPOnly() bool { return m.config.CookieHTTPOnly }

// CookieSecure reports whether the cookie is sent with the Secure
// attribute; a partitioned cookie always is.
func (m *Manager) CookieSecure() bool { return m.config.CookieSecure || m.config.CookiePartitioned }

// CookieSameSite returns the cookie's SameSite attribute: "", Lax, Strict or None.
func (m *Manager) CookieSameSite() string { return m.config.CookieSameSite }

// CookiePartitioned reports whether the cookie is partitioned (CHIPS).
func (m *Manager) CookiePartitioned() bool { return m.config.CookiePartitioned }

// Lifetime returns how long a session lives after its cookie was last issued.
func (m *Manager) Lifetime() time.Duration { return m.config.Lifetime }

// ExpirationTime returns when a permanent session's cookie expires if it
// is issued now, and false for a non-permanent session, whose cookie lasts
// as long as the browser session. It is never later than the end of the
// absolute lifetime.
func (m *Manager) ExpirationTime(s *Session) (time.Time, bool) {
	if !s.Permanent() {
		return time.Time{}, false
	}
	expires := m.now().Add(m.config.Lifetime)
	if m.config.AbsoluteLifetime > 0 && !s.created.IsZero() {
		if end := s.created.Add(m.config.AbsoluteLifetime); end.Before(expires) {
			expires = end
		}
	}
	return expires, true
}

// ShouldSetCookie reports whether Save must (re)issue the cookie: when the
// session was modified, or when it is permanent and refresh-each-request is
// on, so that its expiry slides forward, or when an idle timeout needs the
// signed issue time to move. Reissues that would only move the expiry wait
// for the refresh interval.
func (m *Manager) ShouldSetCookie(s *Session) bool {
	if s.Modified() {
		return true
	}
	if !(s.Permanent() && m.config.RefreshEachRequest) && m.config.IdleTimeout == 0 {
		return false
	}
	return !m.throttled(s)
}

// throttled reports whether a reissue that would only move the expiry
// waits: the cookie is younger than the refresh interval, and no end (the
// idle timeout, the lifetime) comes within an interval, so that a session
// in use is always refreshed before it would expire.
func (m *Manager) throttled(s *Session) bool {
	interval := m.config.RefreshInterval
	if interval == 0 || s.issued.IsZero() {
		return false
	}
	now := m.now()
	if !now.Before(s.issued.Add(interval)) {
		return false
	}
	horizon := now.Add(interval)
	if idle := m.config.IdleTimeout; idle > 0 && !horizon.Before(s.issued.Add(idle)) {
		return false
	}
	return horizon.Before(s.issued.Add(m.config.Lifetime))
}

// Open returns the session carried by r's cookie and how it was obtained.
// No cookie gives a new, empty session; so does a cookie that is forged,
// tampered with, undecodable, older than the lifetime (permanent or not, as
// in Flask) or issued more than MaxClockSkew in the future. The reason is
// logged at debug level, or as a warning for a cookie that is validly
// signed but cannot be decoded. Without a codec, Open returns a null session.
func (m *Manager) Open(r *http.Request) (*Session, Outcome) {
	s, outcome, _ := m.open(r)
	return s, outcome
}

// open is Open, and also returns the session cookie's value as the
// request carried it (the first part of a split one).
func (m *Manager) open(r *http.Request) (*Session, Outcome, string) {
	if m.codec == nil {
		return NewNullSession(errors.New("no secret key is configured")), OutcomeUnavailable, ""
	}
	cookies := readCookies(r.Header, m.config.CookieName)
	if cookies.main == "" {
		s := m.newSession()
		s.partsSeen = cookies.partsSeen
		return s, OutcomeNew, ""
	}
	if cookies.bytes > m.maxBytes() {
		// Written under an older, larger budget: whatever it holds cannot
		// be issued again, and the user must not keep sending it.
		s := m.newSession()
		s.partsSeen, s.purge = cookies.partsSeen, true
		m.logger.Debug("session cookie rejected", zap.String("outcome", string(OutcomeTooLarge)),
			zap.Int("bytes", cookies.bytes), zap.Int("max_cookie_bytes", m.maxBytes()))
		return s, OutcomeTooLarge, cookies.main
	}
	value, err := cookies.value(m.maxParts())
	var s *Session
	outcome := OutcomeBadSignature
	if errors.Is(err, errTooManyParts) {
		outcome = OutcomeTooLarge
	}
	if err == nil {
		s, outcome, err = m.decode(value)
	}
	if err == nil && m.store != nil {
		s, outcome, err = m.load(r.Context(), s, outcome)
		if errors.Is(err, ErrStore) {
			m.logger.Error("session store failed", zap.Error(err))
			return NewNullSession(err), OutcomeUnavailable, cookies.main
		}
	}
	if err != nil {
		// Forged, stale and foreign cookies are routine; a signed cookie
		// that cannot be read means a key holder wrote something broken.
		level := zapcore.DebugLevel
		if outcome == OutcomeUndecodable {
			level = zapcore.WarnLevel
		}
		if ce := m.logger.Check(level, "session cookie rejected"); ce != nil {
			ce.Write(zap.String("outcome", string(outcome)), zap.Error(err))
		}
		s = m.newSession()
		s.purge = outcome == OutcomeTooLarge
	}
	s.partsSeen = cookies.partsSeen
	return s, outcome, cookies.main
}

// maxParts returns how many cookies a session may be split over.
func (m *Manager) maxParts() int {
	if m.config.MaxCookieParts == 0 {
		return DefaultMaxCookieParts
	}
	return m.config.MaxCookieParts
}

// maxBytes returns the budget for the session's cookies.
func (m *Manager) maxBytes() int {
	if m.config.MaxCookieBytes == 0 {
		return DefaultMaxCookieBytes
	}
	return m.config.MaxCookieBytes
}

// writableParts returns how many cookies a session is ever written in:
// a store's ID takes one.
func (m *Manager) writableParts() int {
	if m.store != nil {
		return 1
	}
	return m.maxParts()
}

// newSession returns a new, empty session that stores values in the
// codec's form.
func (m *Manager) newSession() *Session {
	s := NewSession()
	s.form = m.form
	return s
}

func (m *Manager) decode(value string) (*Session, Outcome, error) {
	o, known := m.cache.get(value)
	if !known {
		if m.cache.accepts(value) {
			// value is a slice of the request's whole Cookie line; what
			// is remembered (the key, and a Flask payload) must not keep
			// the line alive.
			value = strings.Clone(value)
		}
		payload, keyIndex, err := m.codec.Decode(m.config.CookieName, value)
		switch {
		case errors.Is(err, ErrUndecodable):
			return nil, OutcomeUndecodable, err
		case err != nil:
			return nil, OutcomeBadSignature, err
		}
		o = &opened{payload: payload, keyIndex: keyIndex}
	}
	payload := o.payload
	// Compare instants, not durations: a hostile issue time far in the
	// past or future would overflow a time.Duration.
	now := m.now()
	if now.After(payload.Issued.Add(m.config.Lifetime)) {
		return nil, OutcomeExpired, fmt.Errorf("issued more than the lifetime (%s) ago", m.config.Lifetime)
	}
	if payload.Issued.After(now.Add(MaxClockSkew)) {
		return nil, OutcomeExpired, fmt.Errorf("issued more than %s in the future", MaxClockSkew)
	}
	if outcome, err := m.checkLifetimes(payload, now); err != nil {
		return nil, outcome, err
	}
	if !known {
		if err := o.parse(); err != nil {
			return nil, OutcomeUndecodable, fmt.Errorf("%w: %w", ErrUndecodable, err)
		}
		m.cache.add(value, o)
	}
	outcome := OutcomeValid
	if o.keyIndex > 0 {
		outcome = OutcomeFallbackKey
	}
	return o.session(m.form), outcome, nil
}

// checkLifetimes applies the lifetimes beyond Flask's: the idle timeout,
// the absolute lifetime and the revocation instant. A codec without a
// creation time (Flask's) counts the issue time as the creation time.
func (m *Manager) checkLifetimes(p Payload, now time.Time) (Outcome, error) {
	created := p.Created
	if created.IsZero() {
		created = p.Issued
	}
	c := &m.config
	switch {
	case c.IdleTimeout > 0 && now.After(p.Issued.Add(c.IdleTimeout)):
		return OutcomeExpired, fmt.Errorf("unused for more than the idle timeout (%s)", c.IdleTimeout)
	case c.AbsoluteLifetime > 0 && now.After(created.Add(c.AbsoluteLifetime)):
		return OutcomeExpired, fmt.Errorf("created more than the absolute lifetime (%s) ago", c.AbsoluteLifetime)
	case !c.RevokeBefore.IsZero() && created.Before(c.RevokeBefore):
		return OutcomeRevoked, errors.New("created before revoke_before")
	}
	return "", nil
}

// Save writes s into the response headers h by Flask's save_session rules:
//
//   - a null session is never saved;
//   - an accessed session makes the response vary by Cookie;
//   - an empty session that was modified deletes the cookie; an empty,
//     unmodified one leaves it alone;
//   - otherwise, when ShouldSetCookie, the cookie is reissued under the
//     current key with a new issue time, expiring after the lifetime when
//     the session is permanent and with the browser session otherwise.
//
// When the cookie would exceed MaxCookieSize in one of the parts it may be
// split over, or its cookies the budget, Save writes nothing and returns an
// error wrapping ErrCookieTooLarge. Cookies a request carried over the
// budget are deleted, and so are parts beyond those this configuration
// writes, whatever else happens to the session.
//
// With a store, the session's changes go to the store, key by key, with a
// time to live of the lifetime (refreshed whenever the cookie would be), and
// the cookie carries the session's ID; a new session, or a renewed one,
// gets a new ID. A store failure to save a change is returned as an error
// wrapping ErrStore, with nothing written; a failure to refresh an
// unchanged session is only logged.
func (m *Manager) Save(ctx context.Context, s *Session, h http.Header) (CookieAction, error) {
	if s.IsNull() {
		return CookieUntouched, nil
	}
	if err := m.checkSessionSize(s); err != nil {
		return CookieUntouched, err
	}
	var action CookieAction
	var lines []string
	var err error
	if m.store != nil {
		var line string
		if action, line, err = m.saveToStore(ctx, s); line != "" {
			lines = []string{line}
		}
	} else {
		action, lines, err = m.saveToCookie(s)
	}
	if err != nil {
		return CookieUntouched, err
	}
	switch {
	case action != CookieUntouched:
		// Parts the request had that the new cookie does not use.
		lines = append(lines, m.attrs.deletePartLines(max(len(lines), 1), s.partsSeen)...)
	case s.purge:
		// Cookies over the budget opened nothing; they go, all of them.
		action, lines = CookieDeleted, append([]string{m.attrs.deleteLine()}, m.attrs.deletePartLines(1, s.partsSeen)...)
	case s.partsSeen >= m.writableParts():
		// Parts no session of this config is written in (an older
		// config's, with more parts): they only add to every request.
		lines = m.attrs.deletePartLines(m.writableParts(), s.partsSeen)
	}
	if s.Accessed() || action != CookieUntouched {
		AddVaryCookie(h)
	}
	// The canonical name, as h.Add would write it; lines is ours to hand over.
	if existing := h["Set-Cookie"]; len(existing) > 0 {
		h["Set-Cookie"] = append(existing, lines...)
	} else if len(lines) > 0 {
		h["Set-Cookie"] = lines
	}
	return action, nil
}

// checkSessionSize refuses a change that leaves the session larger than
// MaxSessionSize, unless it only removes keys: a session already larger
// (a lower bound after a reload) can always shrink.
func (m *Manager) checkSessionSize(s *Session) error {
	if !s.Modified() || s.onlyRemoves() {
		return nil
	}
	limit := m.config.MaxSessionSize
	if limit == 0 {
		limit = DefaultMaxSessionSize
	}
	if size := s.jsonSize(); size > limit {
		return fmt.Errorf("%w: %d bytes of JSON, the limit (max_session_size) is %d", ErrSessionTooLarge, size, limit)
	}
	return nil
}

// saveToCookie decides the Set-Cookie line of a session kept in the cookie.
func (m *Manager) saveToCookie(s *Session) (CookieAction, []string, error) {
	switch {
	case s.isEmpty() && s.Modified():
		return CookieDeleted, []string{m.attrs.deleteLine()}, nil
	case !s.isEmpty() && m.ShouldSetCookie(s):
		lines, err := m.cookieLines(s, Payload{JSON: s.storedJSON(), Sealed: s.sealed}, m.maxParts())
		if err != nil {
			return CookieUntouched, nil, err
		}
		return CookieSet, lines, nil
	}
	return CookieUntouched, nil, nil
}

// cookieLine seals id, a session's ID as JSON, and renders its one
// Set-Cookie line.
func (m *Manager) cookieLine(s *Session, id []byte) (string, error) {
	lines, err := m.cookieLines(s, Payload{JSON: id}, 1)
	if err != nil {
		return "", err
	}
	return lines[0], nil
}

// cookieLines seals p, which holds s's values or its ID, issued now, and
// renders the Set-Cookie lines, split over at most maxParts cookies.
func (m *Manager) cookieLines(s *Session, p Payload, maxParts int) ([]string, error) {
	now := m.now()
	p.Issued, p.Created = now, s.created
	if p.Created.IsZero() || s.renew {
		// A renewal (a login) starts a new life: the absolute lifetime
		// counts from it. (Renew has dropped the sealed value; a codec
		// that keeps no creation time seals none into it.)
		p.Created = now
	}
	value, err := m.codec.Encode(m.config.CookieName, p)
	if err != nil {
		return nil, err
	}
	if p.Sealed != nil && s.opened != nil && s.opened.remembered && !m.cache.contains(value) {
		// The browser sends this value next: it opens as the old one
		// did, issued now. (Within one second, a session is reissued as
		// the same value.) A value too large to be remembered may reissue
		// short enough, but its Sealed may be a slice of the request's
		// Cookie line: it is not remembered.
		m.cache.add(value, s.opened.reissued(now))
	}
	expires, _ := m.ExpirationTime(s)
	return m.attrs.chunkLines(value, now, expires, maxParts, m.maxBytes())
}

// TakeResponseCookie removes every Set-Cookie line for the session cookie
// from a response's headers, as an upstream that manages the same cookie
// (a Flask app sharing the secret) writes them, and returns the session
// the last one carries, in the stored form, for Session.Adopt. A deleting
// line (empty value, Max-Age=0 or an Expires in the past) gives an empty
// session. found is false when there is no such line. A cookie that does
// not open is an error: the upstream's state would otherwise be lost.
func (m *Manager) TakeResponseCookie(h http.Header) (values map[string]json.RawMessage, found bool, err error) {
	lines := h["Set-Cookie"]
	var last *http.Cookie
	kept := lines[:0:0]
	for _, line := range lines {
		c, perr := http.ParseSetCookie(line)
		if perr != nil || c.Name != m.config.CookieName {
			kept = append(kept, line)
			continue
		}
		last = c
	}
	if last == nil {
		return nil, false, nil
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
	} else {
		h["Set-Cookie"] = kept
	}
	if last.Value == "" || last.MaxAge < 0 || (!last.Expires.IsZero() && last.Expires.Before(m.now())) {
		return map[string]json.RawMessage{}, true, nil
	}
	if m.codec == nil {
		return nil, true, errors.New("no secret key is configured")
	}
	s, outcome, err := m.decode(last.Value)
	if err != nil {
		return nil, true, fmt.Errorf("the upstream's session cookie does not open (%s): %w", outcome, err)
	}
	return s.members(), true, nil
}
