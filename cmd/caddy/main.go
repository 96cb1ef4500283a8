// Command caddy is Caddy with the session gateway module compiled in.
//
// Build a production binary with:
//
//	go build -trimpath -ldflags "-s -w" -o caddy ./cmd/caddy
//
// It imports the module's root package, as the main package xcaddy
// writes does, so that this binary and an xcaddy build register the same
// modules and commands.
package main

import (
	_ "time/tzdata"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/sessiongate/caddy-session"
)

func main() {
	caddycmd.Main()
}
