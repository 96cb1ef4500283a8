package caddymodule

import (
	"cmp"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/go-jose/go-jose/v4"

	"github.com/sessiongate/caddy-session/sessioncore"
)

func init() {
	caddy.RegisterModule(JWKSAdmin{})
	subdirectives["sign_upstream"] = parseSignUpstream
}

// SignUpstream signs the session for the upstream: a compact JWS in a
// request header of its own, whose claims are the session as sent in
// X-Session, iss, aud, iat, exp and, with a server-side store, sid (the
// SHA-256 of the session ID, base64url). The public keys are served as a
// JWKS at JWKSPath and from the admin API (GET /session/jwks).
type SignUpstream struct {
	// The PEM file of the private signing key: Ed25519 (EdDSA), ECDSA
	// P-256 (ES256), P-384 or P-521, or RSA of 2048 bits or more (RS256).
	// Read when the config loads, so a caddy reload picks up a new one.
	// Required.
	KeyFile string `json:"key_file,omitempty"`
	// A PEM file of older keys (public or private), still published in the
	// JWKS so that assertions signed before a rotation verify; never used
	// to sign. Read when the config loads.
	KeyFallbacksFile string `json:"key_fallbacks_file,omitempty"`
	// The aud claim. Required.
	Audience string `json:"audience,omitempty"`
	// The iss claim. Default: the request's host.
	Issuer string `json:"issuer,omitempty"`
	// How long an assertion is valid. Default: 1m.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// The request header that carries the assertion. Default:
	// X-Session-Assertion (<header_prefix>-Assertion).
	Header string `json:"header,omitempty"`
	// session (default): the session under a "session" claim; top: its
	// top-level keys among the claims, the registered ones winning.
	Claim string `json:"claim,omitempty"`
	// The path of the site that serves the JWKS, answered by the handler
	// itself. Default: /.well-known/session-jwks.json.
	JWKSPath string `json:"jwks_path,omitempty"`
}

// DefaultJWKSPath is where a site serves its assertion keys by default.
const DefaultJWKSPath = "/.well-known/session-jwks.json"

// maxAssertionTTL bounds sign_upstream's ttl.
const maxAssertionTTL = 24 * time.Hour

// parseSignUpstream parses sign_upstream's block.
func parseSignUpstream(p *caddyfileParser, d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	c := &SignUpstream{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("sign_upstream: %s specified more than once", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "key_file":
			c.KeyFile, err = singleArg(d)
		case "key_fallbacks_file":
			c.KeyFallbacksFile, err = singleArg(d)
		case "audience":
			c.Audience, err = singleArg(d)
		case "issuer":
			c.Issuer, err = singleArg(d)
		case "ttl":
			c.TTL, err = durationArg(d)
		case "header":
			c.Header, err = singleArg(d)
			if err == nil {
				if cerr := sessioncore.CheckForwardHeader(c.Header); cerr != nil {
					return d.Errf("sign_upstream header: %v", cerr)
				}
			}
		case "claim":
			c.Claim, err = singleArg(d)
			if err == nil && c.Claim != sessioncore.ClaimSession && c.Claim != sessioncore.ClaimTop {
				return d.Errf("sign_upstream claim must be session or top, not %q", c.Claim)
			}
		case "jwks_path":
			c.JWKSPath, err = singleArg(d)
			if err == nil && !strings.HasPrefix(c.JWKSPath, "/") {
				return d.Errf("sign_upstream jwks_path must start with /, not %q", c.JWKSPath)
			}
		default:
			return d.Errf("unrecognized sign_upstream option %q", sub)
		}
		if err != nil {
			return err
		}
	}
	if c.KeyFile == "" {
		return d.Err("sign_upstream: key_file is required")
	}
	if c.Audience == "" {
		return d.Err("sign_upstream: audience is required")
	}
	p.h.SignUpstream = c
	return nil
}

// validate checks the rules of sign_upstream's own settings.
func (c *SignUpstream) validate() error {
	switch {
	case c.KeyFile == "":
		return errors.New("sign_upstream: key_file is required")
	case c.Audience == "":
		return errors.New("sign_upstream: audience is required")
	case c.TTL < 0 || time.Duration(c.TTL) > maxAssertionTTL:
		return fmt.Errorf("sign_upstream: ttl must be positive and at most %s", maxAssertionTTL)
	case c.Claim != "" && c.Claim != sessioncore.ClaimSession && c.Claim != sessioncore.ClaimTop:
		return fmt.Errorf("sign_upstream: claim must be session or top, not %q", c.Claim)
	case c.JWKSPath != "" && !strings.HasPrefix(c.JWKSPath, "/"):
		return fmt.Errorf("sign_upstream: jwks_path must start with /, not %q", c.JWKSPath)
	}
	return nil
}

// provisionAssertion reads the keys and makes the asserter of the
// handler's sign_upstream, and the header its assertions go in. Errors
// name the files, never their content.
func (h *Handler) provisionAssertion() (*sessioncore.Asserter, string, error) {
	c := h.SignUpstream
	if err := c.validate(); err != nil {
		return nil, "", err
	}
	repl := caddy.NewReplacer()
	keyFile := repl.ReplaceKnown(c.KeyFile, "")
	// Errors name the file as written: a placeholder such as
	// {file.*} would put the key itself in its place.
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("sign_upstream key_file %s: cannot be read: %w", c.KeyFile, errors.Unwrap(err))
	}
	key, err := sessioncore.ParseSigningKeyPEM(data)
	if err != nil {
		return nil, "", fmt.Errorf("sign_upstream key_file %s: %w", c.KeyFile, err)
	}
	var fallbacks []crypto.PublicKey
	if c.KeyFallbacksFile != "" {
		path := repl.ReplaceKnown(c.KeyFallbacksFile, "")
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("sign_upstream key_fallbacks_file %s: cannot be read: %w", c.KeyFallbacksFile, errors.Unwrap(err))
		}
		if fallbacks, err = sessioncore.ParsePublicKeysPEM(data); err != nil {
			return nil, "", fmt.Errorf("sign_upstream key_fallbacks_file %s: %w", c.KeyFallbacksFile, err)
		}
	}
	a, err := sessioncore.NewAsserter(sessioncore.AssertionConfig{
		Key: key, Fallbacks: fallbacks, Audience: c.Audience, Issuer: c.Issuer, TTL: time.Duration(c.TTL), Claim: c.Claim,
	})
	if err != nil {
		return nil, "", fmt.Errorf("sign_upstream key_file %s: %w", keyFile, err)
	}
	header := cmp.Or(c.Header, cmp.Or(h.HeaderPrefix, sessioncore.DefaultHeaderPrefix)+"-Assertion")
	h.jwksPath = cmp.Or(c.JWKSPath, DefaultJWKSPath)
	h.asserter = a
	publishedKeys.add(h, a)
	return a, header, nil
}

// serveJWKS answers a request for the JWKS path.
func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return nil
	}
	writeJWKS(w, r, h.asserter.JWKS())
	return nil
}

func writeJWKS(w http.ResponseWriter, r *http.Request, jwks []byte) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(jwks)
	}
}

// publishedKeys are the assertion keys of every provisioned handler, for
// the admin API.
var publishedKeys = &keyRegistry{by: map[*Handler]*sessioncore.Asserter{}}

type keyRegistry struct {
	mu sync.Mutex
	by map[*Handler]*sessioncore.Asserter
}

func (k *keyRegistry) add(h *Handler, a *sessioncore.Asserter) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.by[h] = a
}

func (k *keyRegistry) remove(h *Handler) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.by, h)
}

// jwks returns the union of every loaded handler's keys, each kid once.
func (k *keyRegistry) jwks() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	seen := map[string]bool{}
	for _, a := range k.by {
		for _, key := range a.Keys() {
			if !seen[key.KeyID] {
				seen[key.KeyID] = true
				set.Keys = append(set.Keys, key)
			}
		}
	}
	data, _ := json.Marshal(set)
	return data
}

// JWKSAdmin serves the assertion keys of every loaded session handler on
// Caddy's admin listener:
//
//	GET /session/jwks
type JWKSAdmin struct{}

// CaddyModule returns the Caddy module information.
func (JWKSAdmin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.session_jwks",
		New: func() caddy.Module { return new(JWKSAdmin) },
	}
}

// Routes returns the admin routes.
func (JWKSAdmin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/session/jwks", Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
		}
		writeJWKS(w, r, publishedKeys.jwks())
		return nil
	})}}
}

var _ caddy.AdminRouter = JWKSAdmin{}
