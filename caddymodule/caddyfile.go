package caddymodule

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

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
//		max_cookie_bytes <size>
//		idle_timeout <duration>
//		absolute_lifetime <duration>
//		refresh_interval <duration>
//		revoke_before <RFC 3339 time>
//		refresh_each_request true|false
//		header_prefix <header-name>
//		codec securecookie|flask|<name> [{
//			<option> <value>
//		}]
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
//			client_cache [<max_sessions>]
//		}
//		on_store_error fail_open|fail_closed
//		forward <key> <Header-Name>
//		user_key <key>
//		csrf_protection [{
//			trusted_origin <origin> [<origin>...]
//		}]
//		login oidc {
//			issuer <url>
//			client_id <id>
//			client_secret <value>
//			...
//		}
//		migrate_from <codec> {
//			cookie_name <name>
//			secret <value>
//			secret_file <path>
//			secret_fallbacks <value> [<value>...]
//			lifetime <duration>
//			keep_legacy
//			<codec option> <value>
//		}
//	}
//
// forward may be repeated, once per header, and migrate_from once per
// legacy format.
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
	p := &caddyfileParser{h: s}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		parse, ok := subdirectives[sub]
		if !ok {
			return d.Errf("unrecognized session subdirective %q", sub)
		}
		if seen[sub] && sub != "forward" && sub != "migrate_from" {
			return d.Errf("%s specified more than once", sub)
		}
		seen[sub] = true
		if err := parse(p, d); err != nil {
			return err
		}
	}
	if s.Secret != "" && s.SecretFile != "" {
		return fmt.Errorf("session: set secret or secret_file, not both, at %s:%d", file, line)
	}
	if s.Secret == "" && s.SecretFile == "" {
		// Name the directive's line, not the closing brace's.
		return fmt.Errorf("session: secret is required (for example: secret {env.SESSION_SECRET}), at %s:%d", file, line)
	}
	if info, _ := sessioncore.LookupCodec(cmp.Or(s.Codec, sessioncore.SecureCookieCodecName)); !info.AnySecretLength { // as Flask, any non-empty key, and a warning later
		for _, ls := range p.literalSecrets {
			if err := ls.check(); err != nil {
				return err
			}
		}
	}
	return nil
}

// caddyfileParser is the state of one session block's parse.
type caddyfileParser struct {
	h              *Handler
	literalSecrets []literalSecret // checked once the codec is known
}

// A subdirective parser reads one subdirective's arguments (and block)
// into the handler.
type subdirective func(p *caddyfileParser, d *caddyfile.Dispenser) error

// subdirectives maps every subdirective of the session block to its parser.
var subdirectives = map[string]subdirective{
	"secret":                parseSecret,
	"secret_file":           stringInto(func(h *Handler) *string { return &h.SecretFile }),
	"secret_fallbacks":      parseSecretFallbacks,
	"secret_fallbacks_file": stringInto(func(h *Handler) *string { return &h.SecretFallbacksFile }),
	"cookie_name":           checkedStringInto(func(h *Handler) *string { return &h.CookieName }, sessioncore.CheckCookieName),
	"cookie_domain":         stringInto(func(h *Handler) *string { return &h.CookieDomain }),
	"cookie_path":           checkedStringInto(func(h *Handler) *string { return &h.CookiePath }, sessioncore.CheckCookiePath),
	"cookie_httponly":       boolPtrInto(func(h *Handler) **bool { return &h.CookieHTTPOnly }),
	"cookie_secure":         boolInto(func(h *Handler) *bool { return &h.CookieSecure }),
	"cookie_samesite":       choiceInto(func(h *Handler) *string { return &h.CookieSameSite }, "lax", "strict", "none"),
	"cookie_partitioned":    boolInto(func(h *Handler) *bool { return &h.CookiePartitioned }),
	"lifetime":              durationInto(func(h *Handler) *caddy.Duration { return &h.Lifetime }),
	"refresh_each_request":  boolPtrInto(func(h *Handler) **bool { return &h.RefreshEachRequest }),
	"idle_timeout":          durationInto(func(h *Handler) *caddy.Duration { return &h.IdleTimeout }),
	"absolute_lifetime":     durationInto(func(h *Handler) *caddy.Duration { return &h.AbsoluteLifetime }),
	"refresh_interval":      durationInto(func(h *Handler) *caddy.Duration { return &h.RefreshInterval }),
	"revoke_before": checkedStringInto(func(h *Handler) *string { return &h.RevokeBefore }, func(v string) error {
		_, err := sessioncore.ParseRevokeBefore(v)
		return err
	}),
	"max_cookie_parts": intInto(func(h *Handler) *int { return &h.MaxCookieParts }, 1),
	"max_cookie_bytes": parseMaxCookieBytes,
	"header_prefix": checkedStringInto(func(h *Handler) *string { return &h.HeaderPrefix }, func(v string) error {
		return sessioncore.CheckHeaderPrefix(v)
	}),
	"codec":            parseCodec,
	"forward_cookie":   boolPtrInto(func(h *Handler) **bool { return &h.ForwardCookie }),
	"store":            parseStoreSubdirective,
	"on_store_error":   choiceInto(func(h *Handler) *string { return &h.OnStoreError }, "fail_open", "fail_closed"),
	"forward":          parseForward,
	"user_key":         stringInto(func(h *Handler) *string { return &h.UserKey }),
	"expose_sessions":  flagInto(func(h *Handler) *bool { return &h.ExposeSessions }),
	"record_client_ip": boolInto(func(h *Handler) *bool { return &h.RecordClientIP }),
	"csrf_protection":  parseCSRFProtection,
	"migrate_from":     parseMigrateFrom,
	"revocation_store": parseRevocationStore,
}

func parseSecret(p *caddyfileParser, d *caddyfile.Dispenser) error {
	v, err := singleArg(d)
	if err != nil {
		return err
	}
	p.h.Secret = v
	p.literalSecrets = append(p.literalSecrets, literalSecret{"secret", v, d.File(), d.Line()})
	return nil
}

func parseSecretFallbacks(p *caddyfileParser, d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	for _, a := range args {
		p.literalSecrets = append(p.literalSecrets, literalSecret{"secret_fallbacks", a, d.File(), d.Line()})
	}
	p.h.SecretFallbacks = args
	return nil
}

func parseMaxCookieBytes(p *caddyfileParser, d *caddyfile.Dispenser) error {
	size, err := sizeArg(d, sessioncore.MinCookieBytes, sessioncore.MaxCookieBytesLimit)
	p.h.MaxCookieBytes = int(size)
	return err
}

// sizeArg returns the one size argument of the current subdirective, read
// as Caddy's own size options read theirs (4096, 4KiB, 6kb, 8KB: KB is
// 1000 bytes, KiB 1024), from min to max bytes.
func sizeArg(d *caddyfile.Dispenser, min, max uint64) (uint64, error) {
	sub := d.Val()
	v, err := singleArg(d)
	if err != nil {
		return 0, err
	}
	size, err := humanize.ParseBytes(v)
	if err != nil || size < min || size > max {
		return 0, d.Errf("%s must be a size from %d to %d bytes such as 4KiB or 6000, not %q", sub, min, max, v)
	}
	return size, nil
}

// parseCodec takes the codec's name and an optional block of its options,
// one "<name> <value>" a line.
func parseCodec(p *caddyfileParser, d *caddyfile.Dispenser) error {
	if err := choiceInto(func(h *Handler) *string { return &h.Codec }, sessioncore.CodecNames()...)(p, d); err != nil {
		return err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		value, err := singleArg(d)
		if err != nil {
			return err
		}
		if _, dup := p.h.CodecOptions[name]; dup {
			return d.Errf("codec option %s specified more than once", name)
		}
		if p.h.CodecOptions == nil {
			p.h.CodecOptions = map[string]string{}
		}
		p.h.CodecOptions[name] = value
	}
	return nil
}

func parseStoreSubdirective(p *caddyfileParser, d *caddyfile.Dispenser) error {
	store, err := parseStore(d)
	p.h.Store = store
	return err
}

func parseForward(p *caddyfileParser, d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.ArgErr()
	}
	key, header := args[0], args[1]
	if err := sessioncore.CheckForwardHeader(header); err != nil {
		return d.Err(err.Error())
	}
	for _, f := range p.h.Forward {
		if sessioncore.SameHeaderName(f.Header, header) {
			return d.Errf("forward: header %s is given twice", header)
		}
	}
	p.h.Forward = append(p.h.Forward, ForwardHeader{Key: key, Header: header})
	return nil
}

func parseCSRFProtection(p *caddyfileParser, d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	csrf := &CSRFProtection{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() != "trusted_origin" && d.Val() != "trusted_origins" {
			return d.Errf("unrecognized csrf_protection option %q", d.Val())
		}
		origins := d.RemainingArgs()
		if len(origins) == 0 {
			return d.ArgErr()
		}
		csrf.TrustedOrigins = append(csrf.TrustedOrigins, origins...)
	}
	p.h.CSRFProtection = csrf
	return nil
}

// Parsers for the plain kinds of subdirective, each writing the field that
// field returns.

func stringInto(field func(*Handler) *string) subdirective {
	return func(p *caddyfileParser, d *caddyfile.Dispenser) (err error) {
		*field(p.h), err = singleArg(d)
		return err
	}
}

// checkedStringInto is stringInto with a check whose error names the line.
func checkedStringInto(field func(*Handler) *string, check func(string) error) subdirective {
	return func(p *caddyfileParser, d *caddyfile.Dispenser) error {
		sub := d.Val()
		v, err := singleArg(d)
		if err != nil {
			return err
		}
		if err := check(v); err != nil {
			return d.Errf("%s: %v", sub, err)
		}
		*field(p.h) = v
		return nil
	}
}

// choiceInto takes one of choices, case-insensitively, stored lower-case.
func choiceInto(field func(*Handler) *string, choices ...string) subdirective {
	return func(p *caddyfileParser, d *caddyfile.Dispenser) error {
		sub := d.Val()
		v, err := singleArg(d)
		if err != nil {
			return err
		}
		if !slices.Contains(choices, strings.ToLower(v)) {
			last := len(choices) - 1
			return d.Errf("%s must be %s or %s, not %q", sub, strings.Join(choices[:last], ", "), choices[last], v)
		}
		*field(p.h) = strings.ToLower(v)
		return nil
	}
}

func boolInto(field func(*Handler) *bool) subdirective {
	return func(p *caddyfileParser, d *caddyfile.Dispenser) (err error) {
		*field(p.h), err = boolArg(d)
		return err
	}
}

// boolPtrInto is boolInto for a field whose default is true.
func boolPtrInto(field func(*Handler) **bool) subdirective {
	return func(p *caddyfileParser, d *caddyfile.Dispenser) error {
		v, err := boolArg(d)
		*field(p.h) = &v
		return err
	}
}

func durationInto(field func(*Handler) *caddy.Duration) subdirective {
	return func(p *caddyfileParser, d *caddyfile.Dispenser) (err error) {
		*field(p.h), err = durationArg(d)
		return err
	}
}

func intInto(field func(*Handler) *int, min int) subdirective {
	return func(p *caddyfileParser, d *caddyfile.Dispenser) (err error) {
		*field(p.h), err = intArg(d, min)
		return err
	}
}

// parseStore parses the store subdirective and its block.
func parseStore(d *caddyfile.Dispenser) (*StoreConfig, error) {
	return parseStoreOf(d, nil, storeCookie, storeMemory, storeRedis)
}

// parseStoreOf parses a store block of one of types, with extra options
// of its own beside the store's.
func parseStoreOf(d *caddyfile.Dispenser, extra map[string]func() error, types ...string) (*StoreConfig, error) {
	sub := d.Val()
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	c := &StoreConfig{Type: d.Val()}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	if !slices.Contains(types, c.Type) {
		last := len(types) - 1
		return nil, d.Errf("%s must be %s or %s, not %q", sub, strings.Join(types[:last], ", "), types[last], c.Type)
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return nil, d.Errf("%s specified more than once", sub)
		}
		seen[sub] = true
		if parse, ok := extra[sub]; ok {
			if err := parse(); err != nil {
				return nil, err
			}
			continue
		}
		if !validStoreOption(c.Type, sub) {
			return nil, d.Errf("unrecognized option %q for store %s", sub, c.Type)
		}
		var err error
		switch sub {
		case "max_sessions":
			if c.MaxSessions, err = intArg(d, 1); err != nil {
				return nil, err
			}
		case "max_memory":
			var size uint64
			size, err = sizeArg(d, 1<<20, 1<<40)
			c.MaxMemory = int64(size)
		case "max_session_size":
			var size uint64
			size, err = sizeArg(d, 1<<10, 1<<30)
			c.MaxSessionSize = int(size)
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
		case "sentinel_username":
			c.SentinelUsername, err = singleArg(d)
		case "sentinel_password":
			c.SentinelPassword, err = singleArg(d)
		case "cluster":
			c.Cluster, err = flagArg(d)
		case "tls":
			err = parseRedisTLS(d, c)
		case "db":
			c.DB, err = intArg(d, 0)
		case "key_prefix":
			c.KeyPrefix, err = singleArg(d)
		case "client_cache":
			c.ClientCache = defaultClientCache
			if d.CountRemainingArgs() > 0 {
				c.ClientCache, err = intArg(d, 1)
			}
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
		return option == "max_sessions" || option == "max_memory" || option == "max_session_size"
	case storeRedis:
		switch option {
		case "address", "addresses", "username", "password", "master_name", "sentinel_username", "sentinel_password",
			"cluster", "tls", "db", "key_prefix", "max_session_size", "client_cache":
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

// flagInto is boolInto for a switch that may stand alone (expose_sessions)
// or take true|false.
func flagInto(field func(*Handler) *bool) subdirective {
	return func(p *caddyfileParser, d *caddyfile.Dispenser) (err error) {
		*field(p.h), err = flagArg(d)
		return err
	}
}
