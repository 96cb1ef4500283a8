package caddymodule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/net/http/httpguts"

	"github.com/sessiongate/caddy-session/sessioncore"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("session", parseCaddyfile)
	// Early, so that redir, rewrite, basic_auth, forward_auth,
	// request_header, handle, route, respond, reverse_proxy, php_fastcgi
	// and file_server all run after it (and their matchers can see the
	// session), with no order line in the user's Caddyfile. Only header,
	// request_body, map, vars and the like come earlier; header's deferred
	// edits wrap this handler and so see the final session.
	httpcaddyfile.RegisterDirectiveOrder("session", httpcaddyfile.Before, "redir")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(Handler)
	err := s.UnmarshalCaddyfile(h.Dispenser)
	return s, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	session [<matcher>] {
//		secret <value>
//		secret_file <path>
//		secret_fallbacks <value> [<value>...]
//		secret_fallbacks_file <path>
//		cookie_name <name>
//		cookie_domain <domain>
//		cookie_path <path>
//		cookie_httponly true|false
//		cookie_secure true|false
//		cookie_samesite lax|strict|none
//		cookie_partitioned true|false
//		lifetime <duration>
//		max_cookie_parts <n>
//		idle_timeout <duration>
//		absolute_lifetime <duration>
//		refresh_interval <duration>
//		revoke_before <RFC 3339 time>
//		refresh_each_request true|false
//		header_prefix <header-name>
//		codec securecookie|flask
//		forward_cookie true|false
//		store cookie
//		store memory {
//			max_sessions <n>
//		}
//		store redis {
//			address <url|host:port> [<url|host:port>...]
//			username <name>
//			password <password>
//			master_name <name>
//			tls true|false
//			db <n>
//			key_prefix <prefix>
//		}
//		on_store_error fail_open|fail_closed
//		forward <key> <Header-Name>
//		user_key <key>
//		csrf_protection [{
//			trusted_origin <origin> [<origin>...]
//		}]
//	}
//
// forward may be repeated, once per header.
//
// secret is required; write it as a placeholder such as
// {env.SESSION_SECRET} to keep it out of the config. With the default
// securecookie codec it must be at least 32 bytes.
func (s *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume the directive name
	file, line := d.File(), d.Line()
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	var literalSecrets []literalSecret
	forwarded := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] && sub != "forward" {
			return d.Errf("%s specified more than once", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "forward":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.ArgErr()
			}
			if !httpguts.ValidHeaderFieldName(args[1]) {
				return d.Errf("forward: %q is not a valid header name", args[1])
			}
			if forwarded[normalizeForCompare(args[1])] {
				return d.Errf("forward: header %s is given twice", args[1])
			}
			forwarded[normalizeForCompare(args[1])] = true
			s.Forward = append(s.Forward, ForwardHeader{Key: args[0], Header: args[1]})
		case "user_key":
			if s.UserKey, err = singleArg(d); err != nil {
				return err
			}
		case "csrf_protection":
			if d.NextArg() {
				return d.ArgErr()
			}
			s.CSRFProtection = &CSRFProtection{}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				if d.Val() != "trusted_origin" && d.Val() != "trusted_origins" {
					return d.Errf("unrecognized csrf_protection option %q", d.Val())
				}
				origins := d.RemainingArgs()
				if len(origins) == 0 {
					return d.ArgErr()
				}
				s.CSRFProtection.TrustedOrigins = append(s.CSRFProtection.TrustedOrigins, origins...)
			}
		case "secret":
			if s.Secret, err = singleArg(d); err != nil {
				return err
			}
			literalSecrets = append(literalSecrets, literalSecret{sub, s.Secret, d.File(), d.Line()})
		case "secret_fallbacks":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			for _, a := range args {
				literalSecrets = append(literalSecrets, literalSecret{sub, a, d.File(), d.Line()})
			}
			s.SecretFallbacks = args
		case "codec":
			if s.Codec, err = singleArg(d); err != nil {
				return err
			}
			if s.Codec != codecSecureCookie && s.Codec != codecFlask {
				return d.Errf("codec must be securecookie or flask, not %q", s.Codec)
			}
		case "store":
			if s.Store, err = parseStore(d); err != nil {
				return err
			}
		case "on_store_error":
			if s.OnStoreError, err = singleArg(d); err != nil {
				return err
			}
			if s.OnStoreError != "fail_open" && s.OnStoreError != "fail_closed" {
				return d.Errf("on_store_error must be fail_open or fail_closed, not %q", s.OnStoreError)
			}
		case "forward_cookie":
			var v bool
			if v, err = boolArg(d); err != nil {
				return err
			}
			s.ForwardCookie = &v
		case "cookie_name":
			if s.CookieName, err = singleArg(d); err != nil {
				return err
			}
		case "cookie_domain":
			if s.CookieDomain, err = singleArg(d); err != nil {
				return err
			}
		case "cookie_path":
			if s.CookiePath, err = singleArg(d); err != nil {
				return err
			}
			if !strings.HasPrefix(s.CookiePath, "/") {
				return d.Errf("cookie_path must start with /, not %q", s.CookiePath)
			}
		case "cookie_httponly":
			var v bool
			if v, err = boolArg(d); err != nil {
				return err
			}
			s.CookieHTTPOnly = &v
		case "cookie_secure":
			if s.CookieSecure, err = boolArg(d); err != nil {
				return err
			}
		case "cookie_samesite":
			if s.CookieSameSite, err = singleArg(d); err != nil {
				return err
			}
			if _, err := sessioncore.ParseSameSite(s.CookieSameSite); err != nil || s.CookieSameSite == "" {
				return d.Errf("cookie_samesite must be lax, strict or none, not %q", s.CookieSameSite)
			}
			s.CookieSameSite = strings.ToLower(s.CookieSameSite)
		case "cookie_partitioned":
			if s.CookiePartitioned, err = boolArg(d); err != nil {
				return err
			}
		case "lifetime":
			if s.Lifetime, err = durationArg(d); err != nil {
				return err
			}
		case "max_cookie_parts":
			if s.MaxCookieParts, err = intArg(d, 1); err != nil {
				return err
			}
		case "idle_timeout":
			if s.IdleTimeout, err = durationArg(d); err != nil {
				return err
			}
		case "absolute_lifetime":
			if s.AbsoluteLifetime, err = durationArg(d); err != nil {
				return err
			}
		case "refresh_interval":
			if s.RefreshInterval, err = durationArg(d); err != nil {
				return err
			}
		case "revoke_before":
			if s.RevokeBefore, err = singleArg(d); err != nil {
				return err
			}
			if _, err := time.Parse(time.RFC3339, s.RevokeBefore); err != nil {
				return d.Errf("revoke_before must be an RFC 3339 time such as 2026-11-25T20:00:00Z, not %q", s.RevokeBefore)
			}
		case "secret_file":
			if s.SecretFile, err = singleArg(d); err != nil {
				return err
			}
		case "secret_fallbacks_file":
			if s.SecretFallbacksFile, err = singleArg(d); err != nil {
				return err
			}
		case "refresh_each_request":
			var v bool
			if v, err = boolArg(d); err != nil {
				return err
			}
			s.RefreshEachRequest = &v
		case "header_prefix":
			if s.HeaderPrefix, err = singleArg(d); err != nil {
				return err
			}
			if _, err := sessioncore.NewHeaderProtocol(s.HeaderPrefix); err != nil {
				return d.Errf("header_prefix: %v", err)
			}
		default:
			return d.Errf("unrecognized session subdirective %q", sub)
		}
	}
	if s.Secret != "" && s.SecretFile != "" {
		return fmt.Errorf("session: set secret or secret_file, not both, at %s:%d", file, line)
	}
	if s.Secret == "" && s.SecretFile == "" {
		// Name the directive's line, not the closing brace's.
		return fmt.Errorf("session: secret is required (for example: secret {env.SESSION_SECRET}), at %s:%d", file, line)
	}
	if s.Codec != codecFlask { // Flask accepts any non-empty key, and warns later
		for _, ls := range literalSecrets {
			if err := ls.check(); err != nil {
				return err
			}
		}
	}
	return nil
}

// normalizeForCompare folds a header name as backends do.
func normalizeForCompare(name string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
}

// parseStore parses the store subdirective and its block.
func parseStore(d *caddyfile.Dispenser) (*StoreConfig, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	c := &StoreConfig{Type: d.Val()}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	switch c.Type {
	case storeCookie, storeMemory, storeRedis:
	default:
		return nil, d.Errf("store must be cookie, memory or redis, not %q", c.Type)
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return nil, d.Errf("%s specified more than once", sub)
		}
		seen[sub] = true
		if !validStoreOption(c.Type, sub) {
			return nil, d.Errf("unrecognized option %q for store %s", sub, c.Type)
		}
		var err error
		switch sub {
		case "max_sessions":
			if c.MaxSessions, err = intArg(d, 1); err != nil {
				return nil, err
			}
		case "address", "addresses":
			if c.Addresses = d.RemainingArgs(); len(c.Addresses) == 0 {
				return nil, d.ArgErr()
			}
		case "username":
			c.Username, err = singleArg(d)
		case "password":
			c.Password, err = singleArg(d)
		case "master_name":
			c.MasterName, err = singleArg(d)
		case "tls":
			c.TLS, err = boolArg(d)
		case "db":
			c.DB, err = intArg(d, 0)
		case "key_prefix":
			c.KeyPrefix, err = singleArg(d)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

func validStoreOption(storeType, option string) bool {
	switch storeType {
	case storeMemory:
		return option == "max_sessions"
	case storeRedis:
		switch option {
		case "address", "addresses", "username", "password", "master_name", "tls", "db", "key_prefix":
			return true
		}
	}
	return false
}

// intArg returns the one integer argument of the current subdirective,
// which must be at least min.
func intArg(d *caddyfile.Dispenser, min int) (int, error) {
	sub := d.Val()
	v, err := singleArg(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		return 0, d.Errf("%s must be a whole number of at least %d, not %q", sub, min, v)
	}
	return n, nil
}

// durationArg returns the one positive duration argument of the current
// subdirective (Caddy durations: 90m, 12h, 31d).
func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	sub := d.Val()
	v, err := singleArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s must be a positive duration such as 31d or 12h, not %q", sub, v)
	}
	return caddy.Duration(dur), nil
}

// singleArg returns the one argument of the current subdirective.
func singleArg(d *caddyfile.Dispenser) (string, error) {
	args := d.RemainingArgs()
	if len(args) != 1 {
		return "", d.ArgErr()
	}
	return args[0], nil
}

// boolArg returns the one true|false argument of the current subdirective.
func boolArg(d *caddyfile.Dispenser) (bool, error) {
	sub := d.Val()
	v, err := singleArg(d)
	if err != nil {
		return false, err
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, d.Errf("%s must be true or false, not %q", sub, v)
	}
	return b, nil
}

// literalSecret is a secret as written in the Caddyfile, with where.
type literalSecret struct {
	sub, value, file string
	line             int
}

// check rejects a secret shorter than the minimum when it is written in the
// Caddyfile itself, naming its line. A secret from a placeholder is checked
// when the config is provisioned. The error gives the length, never the
// secret.
func (ls literalSecret) check() error {
	if strings.Contains(ls.value, "{") || len(ls.value) >= sessioncore.MinSecretLength {
		return nil
	}
	return fmt.Errorf("%s is %d bytes long; it must be at least %d, at %s:%d", ls.sub, len(ls.value), sessioncore.MinSecretLength, ls.file, ls.line)
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
