package sessioncore

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Flask's defaults for the session cookie.
const (
	DefaultCookieName = "session"
	DefaultCookiePath = "/"
	DefaultLifetime   = 31 * 24 * time.Hour // PERMANENT_SESSION_LIFETIME
)

// Config is the session cookie's configuration. Its fields mirror Flask's
// config keys; DefaultConfig returns Flask's defaults.
type Config struct {
	CookieName         string        // SESSION_COOKIE_NAME
	CookieDomain       string        // SESSION_COOKIE_DOMAIN; empty: no Domain attribute
	CookiePath         string        // SESSION_COOKIE_PATH
	CookieHTTPOnly     bool          // SESSION_COOKIE_HTTPONLY
	CookieSecure       bool          // SESSION_COOKIE_SECURE
	CookieSameSite     string        // SESSION_COOKIE_SAMESITE: "", Lax, Strict or None
	CookiePartitioned  bool          // SESSION_COOKIE_PARTITIONED; implies Secure
	Lifetime           time.Duration // PERMANENT_SESSION_LIFETIME
	RefreshEachRequest bool          // SESSION_REFRESH_EACH_REQUEST

	// Beyond Flask (zero: off).

	// IdleTimeout voids a session unused for this long, judged by the
	// signed issue time; sessions are then reissued as they are used.
	IdleTimeout time.Duration
	// AbsoluteLifetime voids a session this long after it was created,
	// whatever refreshes happened.
	AbsoluteLifetime time.Duration
	// RefreshInterval throttles reissues that would only move the expiry:
	// a cookie issued less than this long ago is not reissued.
	RefreshInterval time.Duration
	// RevokeBefore voids every session created before this instant.
	RevokeBefore time.Time
	// MaxCookieParts is how many cookies a session too large for one may
	// be split over (see chunks.go); 0 means DefaultMaxCookieParts, 1 no
	// splitting.
	MaxCookieParts int
	// MaxCookieBytes is the budget for the session's cookies: the bytes
	// they add together to the Cookie line a browser sends back (see
	// chunks.go); 0 means DefaultMaxCookieBytes. A session over it is not
	// issued, and a request over it opens a new session and deletes the
	// cookies.
	MaxCookieBytes int
	// MaxSessionSize bounds a session's JSON, in bytes, whatever keeps it;
	// 0 means DefaultMaxSessionSize. A change that would leave a session
	// larger is refused, unless it only removes keys.
	MaxSessionSize int
}

// DefaultMaxSessionSize is the default bound of a session's JSON: far
// beyond what a login needs, far below what would let one client fill a
// store or send upstreams megabyte headers.
const DefaultMaxSessionSize = 64 << 10

// DefaultConfig returns Flask's defaults: cookie "session" on path "/",
// HttpOnly, not Secure, no SameSite, not partitioned, a 31-day lifetime,
// permanent sessions refreshed on each request.
func DefaultConfig() Config {
	return Config{
		CookieName:         DefaultCookieName,
		CookiePath:         DefaultCookiePath,
		CookieHTTPOnly:     true,
		Lifetime:           DefaultLifetime,
		RefreshEachRequest: true,
	}
}

// check validates c and puts it in its canonical form (the SameSite
// attribute's spelling, the Domain as Werkzeug writes it). It is the one
// place each rule of a setting is written; a configuration parser that
// wants to point at the offending line calls the Check and Parse
// functions below, which check returns the errors of.
func (c *Config) check() error {
	if err := CheckCookieName(c.CookieName); err != nil {
		return err
	}
	if err := CheckCookiePath(c.CookiePath); err != nil {
		return err
	}
	if c.Lifetime <= 0 {
		return fmt.Errorf("lifetime must be positive, not %s", c.Lifetime)
	}
	if c.MaxCookieParts < 0 || c.MaxCookieParts > MaxCookiePartsLimit {
		return fmt.Errorf("max cookie parts must be from 1 to %d, not %d", MaxCookiePartsLimit, c.MaxCookieParts)
	}
	if c.MaxSessionSize < 0 {
		return fmt.Errorf("max session size must not be negative, not %d", c.MaxSessionSize)
	}
	if b := c.MaxCookieBytes; b != 0 && (b < MinCookieBytes || b > MaxCookieBytesLimit) {
		return fmt.Errorf("max cookie bytes must be from %d to %d, not %d", MinCookieBytes, MaxCookieBytesLimit, b)
	}
	if r := c.RefreshInterval; r > 0 && (r >= c.Lifetime || (c.IdleTimeout > 0 && r >= c.IdleTimeout)) {
		return fmt.Errorf("refresh interval (%s) must be shorter than the lifetime and the idle timeout", r)
	}
	if !c.RevokeBefore.IsZero() && c.RevokeBefore.After(time.Now().Add(MaxClockSkew)) {
		// Every login until then would be void at its next request.
		return fmt.Errorf("revoke_before %s is in the future", c.RevokeBefore.Format(time.RFC3339))
	}
	var err error
	if c.CookieSameSite, err = ParseSameSite(c.CookieSameSite); err != nil {
		return err
	}
	if c.CookieDomain, err = normalizeCookieDomain(c.CookieDomain); err != nil {
		return err
	}
	return checkCookiePrefix(c)
}

// CheckCookieName refuses a cookie name that is not an RFC 6265 token.
func CheckCookieName(name string) error {
	if name == "" {
		return errors.New("cookie name must not be empty")
	}
	if !validCookieName(name) {
		return fmt.Errorf("cookie name %q is not a valid cookie name", name)
	}
	return nil
}

// CheckCookiePath refuses a cookie path that does not start with '/'.
func CheckCookiePath(path string) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("cookie path must start with /, not %q", path)
	}
	return nil
}

// ParseRevokeBefore reads a revoke_before instant, RFC 3339; empty means
// none. (Config's check refuses one in the future.)
func ParseRevokeBefore(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 time such as 2026-11-25T20:00:00Z, not %q", s)
	}
	return t, nil
}

// validCookieName reports whether name is an RFC 6265 token.
func validCookieName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || isSeparator(c) {
			return false
		}
	}
	return true
}

func isSeparator(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=', '{', '}':
		return true
	}
	return false
}
