package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/sessiongate/caddy-session/sessioncore"
)

func init() {
	subdirectives["send"] = keysInto(func(h *Handler) *[]string { return &h.Send }, "hide", func(h *Handler) []string { return h.Hide })
	subdirectives["hide"] = keysInto(func(h *Handler) *[]string { return &h.Hide }, "send", func(h *Handler) []string { return h.Send })
	subdirectives["writable"] = keysInto(func(h *Handler) *[]string { return &h.Writable }, "readonly", func(h *Handler) []string { return h.Readonly })
	subdirectives["readonly"] = keysInto(func(h *Handler) *[]string { return &h.Readonly }, "writable", func(h *Handler) []string { return h.Writable })
}

// keysInto parses a list of top-level session keys, refused beside its
// converse.
func keysInto(field func(*Handler) *[]string, converse string, other func(*Handler) []string) subdirective {
	return func(p *caddyfileParser, d *caddyfile.Dispenser) error {
		sub := d.Val()
		keys := d.RemainingArgs()
		if len(keys) == 0 {
			return d.ArgErr()
		}
		if len(other(p.h)) > 0 {
			return d.Errf("set %s or %s, not both", sub, converse)
		}
		*field(p.h) = keys
		return nil
	}
}

// viewAndRules returns the gateway's view and write rules of the handler.
func (h *Handler) viewAndRules() (*sessioncore.View, *sessioncore.WriteRules) {
	var view *sessioncore.View
	var rules *sessioncore.WriteRules
	if len(h.Send) > 0 || len(h.Hide) > 0 {
		view = &sessioncore.View{Send: h.Send, Hide: h.Hide}
	}
	if len(h.Writable) > 0 || len(h.Readonly) > 0 {
		rules = &sessioncore.WriteRules{Writable: h.Writable, Readonly: h.Readonly}
	}
	return view, rules
}
