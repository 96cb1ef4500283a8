package django

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// CookieExpires is Django's rule for the session cookie's Max-Age and
// Expires (SessionMiddleware.process_response, with
// SessionBase.get_expire_at_browser_close and get_expiry_age), where
// lifetime is SESSION_COOKIE_AGE and SESSION_EXPIRE_AT_BROWSER_CLOSE is
// Django's default, False. By the session's _session_expiry:
//
//   - none, null, "" (or anything Django cannot use): the cookie lasts
//     lifetime;
//   - 0 (or false, which Python takes for 0): the browser session;
//   - a number of seconds: that many (a negative one expires the cookie);
//   - a date and time as set_expiry stores it since Django 4.2 (ISO 8601,
//     datetime.isoformat): until then, to the second below; one without a
//     time zone is taken as UTC. (Django 3.2's JSON serializer cannot store a
//     date at all.)
//
// As in Django, _session_expiry only sets the cookie's attributes: the
// signed timestamp alone decides whether a cookie is still valid, against
// the lifetime (signed_cookies' max_age is SESSION_COOKIE_AGE).
func (c *Codec) CookieExpires(values func(key string) (json.RawMessage, bool), now time.Time, lifetime time.Duration) (time.Time, bool) {
	v, ok := values(ExpiryKey)
	if !ok {
		return now.Add(lifetime), true
	}
	switch {
	case string(v) == "false":
		return time.Time{}, false
	case string(v) == "true":
		return now.Add(time.Second), true // Python's True is 1
	case len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9'):
		seconds, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return now.Add(lifetime), true
		}
		if seconds == 0 {
			return time.Time{}, false
		}
		// Max-Age is int(max_age); keep within what a time.Time holds.
		seconds = math.Trunc(math.Max(math.Min(seconds, 1<<40), -(1 << 40)))
		return now.Add(time.Duration(seconds) * time.Second), true
	case len(v) > 2 && v[0] == '"':
		var text string
		if json.Unmarshal(v, &text) != nil {
			return now.Add(lifetime), true
		}
		at, ok := parseISODateTime(text)
		if !ok {
			return now.Add(lifetime), true
		}
		// delta.days * 86400 + delta.seconds: whole seconds, rounded down.
		d := at.Sub(now)
		seconds := d / time.Second
		if d < 0 && d%time.Second != 0 {
			seconds--
		}
		return now.Add(seconds * time.Second), true
	}
	return now.Add(lifetime), true
}

// parseISODateTime reads what Python's datetime.isoformat writes (and
// datetime.fromisoformat reads back): a date, 'T' or ' ', a time with
// optional fraction, and an optional UTC offset; without one, UTC.
func parseISODateTime(s string) (time.Time, bool) {
	if len(s) >= 11 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	// A date alone is midnight.
	if !strings.Contains(s, "T") {
		if t, err := time.Parse("2006-01-02", s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
