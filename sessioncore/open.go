package sessioncore

import (
	"errors"
	"fmt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"net/http"
	"strings"
	"time"
)

// Opening a session: the cookie a request carries, checked and decoded.

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
	cookies := m.readCookies(r.Header)
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
	if err == nil && m.revocations != nil {
		if revoked, rerr := m.checkUserCutoff(r.Context(), s); rerr != nil {
			if errors.Is(rerr, ErrStore) {
				m.logger.Error("session revocation map failed", zap.Error(rerr))
				return NewNullSession(rerr), OutcomeUnavailable, cookies.main
			}
			outcome, err = revoked, rerr
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
	if !payload.Expires.IsZero() && !now.Before(payload.Expires) {
		return nil, OutcomeExpired, errors.New("past the expiry it carries")
	}
	if payload.Issued.IsZero() {
		// A format without an issue time (Rails').
		payload.Issued = now
		if start := payload.Expires.Add(-m.config.Lifetime); !payload.Expires.IsZero() && start.Before(now) {
			payload.Issued = start
		}
	}
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
	s := o.session(m.form)
	s.issued = payload.Issued
	return s, outcome, nil
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
