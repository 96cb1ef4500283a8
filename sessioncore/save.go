package sessioncore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Saving a session by Flask's rules: whether, when and how the cookie is
// (re)issued, refreshed or deleted.

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
	if m.revokedSinceOpen(ctx, s) {
		m.logger.Debug("session not reissued: its user was revoked since it was opened")
		return CookieUntouched, nil
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
		// Parts the request had that the new cookie does not use (a
		// pair's two lines are one cookie that is never split).
		used := len(lines)
		if m.signatureCookie() != "" {
			used = 1
		}
		lines = append(lines, m.attrs.deletePartLines(max(used, 1), s.partsSeen)...)
	case s.purge:
		// Cookies over the budget opened nothing; they go, all of them.
		action, lines = CookieDeleted, append(m.deleteLines(), m.attrs.deletePartLines(1, s.partsSeen)...)
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
		return CookieDeleted, m.deleteLines(), nil
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
	if len(lines) != 1 {
		// A SignedPair codec's app keeps its session in its cookies.
		return "", errors.New("a codec that writes two cookies cannot carry a store's session ID")
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
	// When the Manager stops accepting the value, for a format that
	// carries it (Rails').
	p.Expires = now.Add(m.config.Lifetime)
	if end := p.Created.Add(m.config.AbsoluteLifetime); m.config.AbsoluteLifetime > 0 && end.Before(p.Expires) {
		p.Expires = end
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
	return m.attrs.chunkLines(value, m.signatureCookie(), now, expires, maxParts, m.maxBytes())
}

// CookieExpiry is implemented by a codec whose app decides how long the
// browser keeps the session cookie by a rule of its own, not Flask's
// _permanent flag. Django, for one, keeps every session cookie for
// SESSION_COOKIE_AGE unless the session's _session_expiry says otherwise
// (seconds, a date, or 0 for the browser session); the gateway must write
// the cookie as the app would, or a session the app made to end with the
// browser would outlive it, and one it made to last would not.
//
// CookieExpires is given the session's values (plain JSON, by key), the
// time the cookie is issued and the configured lifetime. It returns when
// the cookie expires and true, or false for a cookie that lasts as long as
// the browser session. An expiry in the past makes the browser drop it.
type CookieExpiry interface {
	CookieExpires(values func(key string) (json.RawMessage, bool), now time.Time, lifetime time.Duration) (expires time.Time, persistent bool)
}

// ExpirationTime returns when a permanent session's cookie expires if it
// is issued now, and false for a non-permanent session, whose cookie lasts
// as long as the browser session. A codec that implements CookieExpiry
// decides both instead. It is never later than the end of the absolute
// lifetime.
func (m *Manager) ExpirationTime(s *Session) (time.Time, bool) {
	var expires time.Time
	if rule, ok := m.codec.(CookieExpiry); ok {
		var persistent bool
		if expires, persistent = rule.CookieExpires(s.Get, m.now(), m.config.Lifetime); !persistent {
			return time.Time{}, false
		}
	} else {
		if !s.Permanent() {
			return time.Time{}, false
		}
		expires = m.now().Add(m.config.Lifetime)
	}
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
