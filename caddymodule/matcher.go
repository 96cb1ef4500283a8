package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(MatchSession{})
}

// MatchSession matches requests by the contents of the session that the
// session handler opened earlier in the same request. Each entry is a
// session key and the values it may have; all entries must match:
//
//   - with no values, the key must be set: present and not null, false,
//     "", [] or {};
//   - with values, the key's value must equal one of them (a string as
//     itself, a number or boolean as its JSON text), or, for an array,
//     contain one of them.
//
// A request that no session handler saw, or whose session could not be
// opened, matches nothing.
//
// Caddyfile (repeat the line to require several keys):
//
//	session <key> [<value>...]
//
// In a CEL expression: session('role', 'admin').
type MatchSession map[string][]string

// CaddyModule returns the Caddy module information.
func (MatchSession) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.matchers.session",
		New: func() caddy.Module { return new(MatchSession) },
	}
}

// UnmarshalCaddyfile sets up the matcher from Caddyfile tokens.
func (m *MatchSession) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if *m == nil {
		*m = MatchSession{}
	}
	// Repeated uses in one named matcher arrive as one token stream.
	for d.Next() {
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		key := args[0]
		if _, dup := (*m)[key]; dup {
			return d.Errf("session matcher: key %q given twice; list its values on one line", key)
		}
		(*m)[key] = args[1:]
	}
	return nil
}

// Match returns true if r matches m.
func (m MatchSession) Match(r *http.Request) bool {
	ok, _ := m.MatchWithError(r)
	return ok
}

// MatchWithError returns true if r matches m.
func (m MatchSession) MatchWithError(r *http.Request) (bool, error) {
	s := sessionOf(r)
	if s == nil || s.IsNull() {
		return false, nil
	}
	for key, values := range m {
		if !s.Matches(key, values...) {
			return false, nil
		}
	}
	return true, nil
}

// Validate checks that the matcher names at least one key.
func (m MatchSession) Validate() error {
	if len(m) == 0 {
		return errors.New("session matcher: name at least one key")
	}
	return nil
}

// CELLibrary makes the matcher usable in CEL expressions as
// session('<key>'[, '<value>'...]).
func (MatchSession) CELLibrary(_ caddy.Context) (cel.Library, error) {
	return caddyhttp.CELMatcherImpl(
		"session",
		"session_match_request_list",
		[]*cel.Type{cel.ListType(cel.StringType)},
		func(data ref.Val) (caddyhttp.RequestMatcherWithError, error) {
			native, err := data.ConvertToNative(reflectStringSlice)
			if err != nil {
				return nil, err
			}
			args := native.([]string)
			if len(args) == 0 {
				return nil, fmt.Errorf("session() needs a key")
			}
			return MatchSession{args[0]: slices.Clone(args[1:])}, nil
		},
	)
}

// Interface guards
var (
	_ caddyhttp.RequestMatcherWithError = (*MatchSession)(nil)
	_ caddyhttp.CELLibraryProducer      = (*MatchSession)(nil)
	_ caddy.Validator                   = (*MatchSession)(nil)
	_ caddyfile.Unmarshaler             = (*MatchSession)(nil)
)

var reflectStringSlice = reflect.TypeOf([]string{})
