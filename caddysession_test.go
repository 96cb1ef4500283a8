package caddysession_test

import (
	"testing"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/sessiongate/caddy-session"
)

// What xcaddy's main package gets from importing the module's root.
func TestImportingTheRootRegistersTheModules(t *testing.T) {
	for _, id := range []string{"http.handlers.session", "http.matchers.session", "admin.api.session"} {
		if _, err := caddy.GetModule(id); err != nil {
			t.Errorf("module %s: %v", id, err)
		}
	}
	if _, ok := caddycmd.Commands()["session"]; !ok {
		t.Error("no caddy session command")
	}
}
