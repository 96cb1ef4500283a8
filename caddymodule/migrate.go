package caddymodule

import (
	"cmp"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// MigrateFrom is a legacy cookie format whose sessions the handler carries
// over to its own: a request without a valid session of the handler's
// format but with a valid legacy cookie opens that one, hands it upstream
// as usual, and gets the session in the handler's format.
type MigrateFrom struct {
	// The legacy cookie's codec (flask, django, rails, ...). Required.
	Codec string `json:"codec"`

	// The codec's options, as for the handler's codec_options.
	CodecOptions map[string]string `json:"codec_options,omitempty"`

	// The legacy cookie's name. Default: the codec's default name, else
	// "session".
	CookieName string `json:"cookie_name,omitempty"`

	// The legacy app's secret; placeholders are resolved as for the
	// handler's secret. Required, or SecretFile.
	Secret string `json:"secret,omitempty"`

	// A file that holds the legacy secret, read when the config loads.
	SecretFile string `json:"secret_file,omitempty"`

	// Older legacy secrets that still open cookies.
	SecretFallbacks []string `json:"secret_fallbacks,omitempty"`

	// How long a legacy cookie is valid after it was issued. Default: the
	// handler's lifetime.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`

	// Keeps the legacy cookie in step while the legacy app still runs: it
	// is forwarded to the upstream, adopted when the app sets it, and
	// written alongside the handler's own cookie. Without it, the legacy
	// cookie is deleted once the session is carried over.
	KeepLegacy bool `json:"keep_legacy,omitempty"`
}

// parseMigrateFrom reads
//
//	migrate_from <codec> {
//		cookie_name <name>
//		secret <value>
//		secret_file <path>
//		secret_fallbacks <value> [<value>...]
//		lifetime <duration>
//		keep_legacy
//		<codec option> <value>
//	}
func parseMigrateFrom(p *caddyfileParser, d *caddyfile.Dispenser) error {
	m := MigrateFrom{}
	var err error
	if m.Codec, err = singleArg(d); err != nil {
		return err
	}
	if _, ok := sessioncore.LookupCodec(m.Codec); !ok {
		return d.Errf("migrate_from: unknown codec %q", m.Codec)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch option := d.Val(); option {
		case "cookie_name":
			m.CookieName, err = singleArg(d)
		case "secret":
			m.Secret, err = singleArg(d)
		case "secret_file":
			m.SecretFile, err = singleArg(d)
		case "secret_fallbacks":
			if m.SecretFallbacks = d.RemainingArgs(); len(m.SecretFallbacks) == 0 {
				err = d.ArgErr()
			}
		case "lifetime":
			m.Lifetime, err = durationArg(d)
		case "keep_legacy":
			if d.NextArg() {
				err = d.ArgErr()
			}
			m.KeepLegacy = true
		default: // the codec's own, checked when the codec is made
			if m.CodecOptions == nil {
				m.CodecOptions = map[string]string{}
			}
			m.CodecOptions[option], err = singleArg(d)
		}
		if err != nil {
			return err
		}
	}
	p.h.MigrateFrom = append(p.h.MigrateFrom, m)
	return nil
}

// migrations makes the legacy formats' managers. A legacy cookie has the
// handler's cookie attributes (path, domain, Secure, SameSite), which an
// app behind the same site sets alike.
func (h *Handler) legacyFormats(main sessioncore.Config) ([]sessioncore.Migration, error) {
	var migrations []sessioncore.Migration
	for i, m := range h.MigrateFrom {
		info, ok := sessioncore.LookupCodec(m.Codec)
		if !ok {
			return nil, fmt.Errorf("migrate_from %d: unknown codec %q", i+1, m.Codec)
		}
		secret, fallbacks, literal, err := secretSources{m.Secret, m.SecretFile, m.SecretFallbacks, ""}.read()
		if err != nil {
			return nil, fmt.Errorf("migrate_from %s: %w", m.Codec, err)
		}
		if literal {
			h.logger.Warn("a migrate_from secret is written in the config itself, where the admin API and autosave.json show it; use {env.*} or {file.*}")
		}
		codec, err := info.Make(m.CodecOptions, secret, fallbacks...)
		if err != nil {
			return nil, fmt.Errorf("migrate_from %s: %w", m.Codec, err)
		}
		cfg := main
		cfg.CookieName = cmp.Or(m.CookieName, info.DefaultCookieName, sessioncore.DefaultCookieName)
		cfg.Lifetime = cmp.Or(time.Duration(m.Lifetime), main.Lifetime)
		cfg.MaxCookieParts, cfg.AbsoluteLifetime, cfg.IdleTimeout, cfg.RefreshInterval = 1, 0, 0, 0
		legacy, err := sessioncore.NewManager(cfg, codec, sessioncore.WithLogger(h.logger))
		if err != nil {
			return nil, fmt.Errorf("migrate_from %s: %w", m.Codec, err)
		}
		migrations = append(migrations, sessioncore.Migration{Legacy: legacy, KeepLegacy: m.KeepLegacy})
	}
	return migrations, nil
}
