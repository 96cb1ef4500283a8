// Package caddysession is the session gateway for Caddy v2: importing it
// registers the HTTP handler http.handlers.session (Caddyfile directive
// session), the request matcher http.matchers.session, the admin endpoint
// admin.api.session (POST /session/revoke) and the operator command
// caddy session (secret, inspect, revoke).
//
// This is the package xcaddy imports:
//
//	xcaddy build --with github.com/sessiongate/caddy-session
//
// or, in a main package of your own beside Caddy's standard modules:
//
//	import _ "github.com/sessiongate/caddy-session"
//
// The Caddy glue lives in the caddymodule package and the session
// semantics, with no Caddy import, in sessioncore; this package only ties
// them to the module's root import path.
package caddysession

import (
	// The handler, matcher, admin endpoint and command register themselves.
	_ "github.com/sessiongate/caddy-session/caddymodule"
)
