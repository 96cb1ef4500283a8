package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/sessiongate/caddy-session/sessioncore"
)

func init() {
	caddy.RegisterModule(Admin{})
}

// Admin is the admin API endpoint that revokes server-side sessions, so a
// stolen session can be killed:
//
//	POST /session/revoke
//	{"id": "<session ID>"}
//
// It deletes the session from every memory and Redis store of the loaded
// configs and answers {"revoked": <how many stores had it>}. It lives on
// Caddy's admin listener, with its usual host and origin checks. The ID is
// the one the upstream receives in X-Session-Id.
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.session",
		New: func() caddy.Module { return new(Admin) },
	}
}

// Routes returns the admin routes.
func (a *Admin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/session/revoke", Handler: caddy.AdminHandlerFunc(a.revoke)}}
}

func (a *Admin) revoke(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
	}
	var body struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil || !sessioncore.ValidSessionID(body.ID) {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New(`want a JSON body {"id": "<session ID>"} with an ID as X-Session-Id gives it`)}
	}
	// Collect first: the pool stays locked while Range runs, and a store
	// call may take a while.
	var all []sessioncore.Store
	stores.Range(func(_, value any) bool {
		all = append(all, value.(pooledStore).Store)
		return true
	})
	revoked := 0
	var failed error
	for _, store := range all {
		found, err := store.Delete(r.Context(), body.ID)
		if err != nil {
			failed = err
		} else if found {
			revoked++
		}
	}
	if failed != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("revoking: %w", failed)}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]int{"revoked": revoked})
}

// Interface guards
var _ caddy.AdminRouter = (*Admin)(nil)
