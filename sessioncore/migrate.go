package sessioncore

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// Moving users between cookie formats: a gateway that now writes one
// format can still open the sessions of the format an app wrote before
// (a Rails app rewritten, say), and carries them over, so that nobody has
// to log in again.

// MaxMigrations is the most legacy formats a gateway migrates from.
const MaxMigrations = 8

// Migration is a legacy cookie format sessions are carried over from.
type Migration struct {
	// Legacy opens and writes the legacy cookie: its codec, cookie name,
	// attributes and lifetime.
	Legacy *Manager
	// KeepLegacy keeps the legacy cookie in step with the session while
	// the legacy app still runs: it is forwarded to the upstream, adopted
	// when the app sets it, and written alongside the session's own cookie.
	// Otherwise it is deleted once the session is carried over.
	KeepLegacy bool
}

// OutcomeMigrated is the outcome of a session opened from a legacy cookie
// (see Migration).
const OutcomeMigrated Outcome = "migrated"

// checkMigrations refuses migrations the gateway cannot honour.
func checkMigrations(main *Manager, migrations []Migration) error {
	if len(migrations) > MaxMigrations {
		return errors.New("migrate_from: at most 8 legacy formats")
	}
	for _, mig := range migrations {
		if mig.Legacy == nil {
			return errors.New("migrate_from: no legacy format")
		}
		sameName := mig.Legacy.config.CookieName == main.config.CookieName
		if mig.KeepLegacy && sameName {
			return errors.New("migrate_from: keep_legacy needs a legacy cookie name other than the session's own")
		}
		if sameName && mig.Legacy.signatureCookie() != "" {
			return errors.New("migrate_from: a format kept in two cookies needs a cookie name other than the session's own")
		}
	}
	return nil
}

// migrate opens the first legacy cookie of r that is valid, when the
// session's own cookie gave nothing, and returns its values as a new
// session of the gateway's own format, modified so that its cookie is
// written. It also records which legacy cookies r carried, and leaves on
// r's header only what the upstream may see of them.
func (g *Gateway) migrate(r *http.Request, s *Session, outcome Outcome) (*Session, Outcome) {
	own := outcome == OutcomeValid || outcome == OutcomeFallbackKey || s.IsNull()
	// A session of the gateway's own format that was refused for its age
	// or revoked must not come back through an older cookie: the legacy
	// cookies are then dropped, kept or not.
	refused := outcome == OutcomeExpired || outcome == OutcomeRevoked
	s.legacyPurge = refused
	for i, mig := range g.migrations {
		legacy, legacyOutcome, cookie := mig.Legacy.open(r)
		accepted := !refused && (legacyOutcome == OutcomeValid || legacyOutcome == OutcomeFallbackKey)
		if cookie != "" {
			s.legacySeen |= 1 << i
		}
		if accepted && !own {
			carried := g.manager.newSession()
			for k, v := range legacy.members() {
				_ = carried.Set(k, legacy.plain(v))
			}
			// The session's life goes on from when the legacy app began
			// it (or last issued it, for a format that keeps no more).
			carried.created = legacy.created
			if carried.created.IsZero() {
				carried.created = legacy.issued
			}
			carried.legacySeen = s.legacySeen
			if g.manager.revocations != nil {
				// The user's revocations apply to their legacy cookies too.
				if _, err := g.manager.checkUserCutoff(r.Context(), carried); err != nil {
					s.legacyPurge, refused = true, true
					continue
				}
			}
			s, outcome, own = carried, OutcomeMigrated, true
		}
		sameName := mig.Legacy.config.CookieName == g.manager.config.CookieName
		switch {
		case sameName:
			// The session's own cookie, which the gateway handles.
		case mig.KeepLegacy && accepted:
			mig.Legacy.forwardSessionCookie(r.Header, cookie)
		default:
			mig.Legacy.removeSessionCookies(r.Header)
		}
	}
	return s, outcome
}

// adoptLegacy takes a legacy cookie that a legacy app still running set
// itself (keep_legacy) as the new state, before the mutation headers
// apply on top, as the gateway does with its own format's cookie.
func (g *Gateway) adoptLegacy(s *Session, header http.Header) (bool, error) {
	adopted := false
	for _, mig := range g.migrations {
		if !mig.KeepLegacy {
			continue
		}
		values, found, err := mig.Legacy.takeResponseCookie(header)
		if err != nil || !found {
			if err != nil {
				return adopted, err
			}
			continue
		}
		plain := make(map[string]json.RawMessage, len(values))
		for k, v := range values {
			plain[k] = mig.Legacy.plainValue(v)
		}
		stored := make(map[string]json.RawMessage, len(plain))
		for k, v := range plain {
			stored[k] = s.stored(v)
		}
		if err := s.Adopt(g.enforceAdoptRules(s, stored)); err != nil {
			return adopted, err
		}
		adopted = true
	}
	return adopted, nil
}

// saveLegacy writes what the legacy cookies need after the session's own
// cookie was saved with action: with keep_legacy, the same session in the
// legacy format when the cookie was set, or its deletion; otherwise, the
// deletion of a legacy cookie the request carried.
func (g *Gateway) saveLegacy(ctx context.Context, s *Session, action CookieAction, header http.Header) error {
	for i, mig := range g.migrations {
		legacy := mig.Legacy
		if legacy.config.CookieName == g.manager.config.CookieName {
			continue // the session's own cookie replaced it
		}
		seen := s.legacySeen&(1<<i) != 0
		switch {
		case mig.KeepLegacy && action == CookieSet && !s.legacyPurge:
			copied := legacy.newSession()
			for k, v := range s.members() {
				_ = copied.Set(k, s.plain(v))
			}
			if _, err := legacy.Save(ctx, copied, header); err != nil {
				return err
			}
		case action == CookieDeleted && mig.KeepLegacy, seen && (!mig.KeepLegacy || s.legacyPurge):
			header["Set-Cookie"] = append(header["Set-Cookie"], legacy.deleteLines()...)
			if cc := header["Cache-Control"]; len(cc) == 0 || cc[0] == "" {
				header["Cache-Control"] = []string{"private"}
			}
		}
	}
	return nil
}

// plainValue returns a value of m's codec's stored form as plain JSON.
func (m *Manager) plainValue(v json.RawMessage) json.RawMessage {
	if m.form == nil {
		return v
	}
	return m.form.ToPlain(v)
}
