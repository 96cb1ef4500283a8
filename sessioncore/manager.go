package sessioncore

import (
	"errors"
	"time"

	"go.uber.org/zap"
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
	// revocations and userKey void the sessions of users revoked since
	// their sessions were created (see WithRevocations).
	revocations         *revocationCache
	revocationStaleness time.Duration
	userKey             string
}

// Option configures a Manager.
type Option func(*Manager)

// WithClock makes the Manager read the time from now, so expiry can be
// tested without sleeping.
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// WithStore keeps sessions in store; the cookie then carries only a signed
// session ID.
func WithStore(store Store) Option { return func(m *Manager) { m.store = store } }

// WithUserKey names the session key whose value (a string or a number) is
// the session's user: a store that keeps a user index (UserIndex) files
// each session under it.
func WithUserKey(key string) Option { return func(m *Manager) { m.userKey = key } }

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
	if t, ok := codec.(Timeless); ok && t.Timeless() && m.revocations != nil {
		return nil, errors.New("revocation_store cannot apply to a cookie that carries no time (cookie-session): every such cookie looks issued now")
	}
	return m, nil
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
