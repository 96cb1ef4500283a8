// Package caddymodule registers the session gateway with Caddy.
package caddymodule
