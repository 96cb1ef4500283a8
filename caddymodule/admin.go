package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

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
// configs and answers how many had it, and what each store said:
//
//	{"revoked": 1, "stores": [
//		{"store": "redis redis://10.0.0.5:6379/0 prefix session:", "revoked": true},
//		{"store": "redis redis://10.0.0.6:6379/0 prefix session:", "revoked": false, "error": "..."}]}
//
// The status is 200 when at least one store answered, even if another
// failed (its error is in its entry: revoke again once it is back), and
// 503 only when every store failed. A store is described by its type,
// addresses (passwords redacted) and key prefix. It lives on Caddy's admin
// listener, with its usual host and origin checks. The ID is the one the
// upstream receives in X-Session-Id.
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
	return []caddy.AdminRoute{
		{Pattern: "/session/revoke", Handler: caddy.AdminHandlerFunc(a.revoke)},
		{Pattern: "/session/sessions", Handler: caddy.AdminHandlerFunc(a.sessions)},
	}
}

// sessions answers GET /session/sessions?user=<user> with the user's
// sessions in every store that keeps a user index: the store, each
// session's ID (an operator may revoke it with POST /session/revoke),
// its ID hash, times, device and, when recorded, address.
func (a *Admin) sessions(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
	}
	user := r.URL.Query().Get("user")
	if user == "" {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New("want ?user=<user>")}
	}
	type listed struct {
		Store string `json:"store"`
		ID    string `json:"id"`
		sessioncore.SessionInfo
	}
	type indexed struct {
		describe string
		index    sessioncore.UserIndex
	}
	var all []indexed
	stores.Range(func(key, value any) bool {
		p := value.(pooledStore)
		if index, ok := p.Store.(sessioncore.UserIndex); ok {
			all = append(all, indexed{describeStore(key.(string)), index})
		}
		return true
	})
	sort.Slice(all, func(i, j int) bool { return all[i].describe < all[j].describe })
	answer := struct {
		Sessions []listed `json:"sessions"`
		Errors   []string `json:"errors,omitempty"`
	}{Sessions: []listed{}}
	for _, store := range all {
		infos, err := store.index.Sessions(r.Context(), user)
		if err != nil {
			answer.Errors = append(answer.Errors, store.describe+": "+err.Error())
			continue
		}
		for _, info := range infos {
			answer.Sessions = append(answer.Sessions, listed{store.describe, info.ID, info})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(answer)
}

func (a *Admin) revoke(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
	}
	var body struct {
		ID     string `json:"id"`
		User   string `json:"user"`
		Except string `json:"except"`
	}
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body)
	if err == nil && body.User != "" && body.ID == "" {
		return a.revokeUser(w, r.Context(), body.User, body.Except)
	}
	if err != nil || !sessioncore.ValidSessionID(body.ID) {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New(`want a JSON body {"id": "<session ID>"} with an ID as X-Session-Id gives it, or {"user": "<user>"}`)}
	}
	// Collect first: the pool stays locked while Range runs, and a store
	// call may take a while.
	type entry struct {
		describe string
		store    sessioncore.Store
		use      *storeUse
	}
	var all []entry
	stores.Range(func(key, value any) bool {
		p := value.(pooledStore)
		if p.use != nil {
			// A reload that unloads the store meanwhile closes it only
			// once no one uses it.
			p.use.acquire()
		}
		all = append(all, entry{describeStore(key.(string)), p.Store, p.use})
		return true
	})
	defer func() {
		for _, e := range all {
			if e.use != nil {
				e.use.release()
			}
		}
	}()
	sort.Slice(all, func(i, j int) bool { return all[i].describe < all[j].describe })
	// The stores are asked together: one that does not answer holds the
	// answer for its timeouts, not for theirs added up.
	answer := revokeAnswer{Stores: make([]storeRevocation, len(all))}
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, e := range all {
		wg.Go(func() {
			found, err := e.store.Delete(r.Context(), body.ID)
			answer.Stores[i] = storeRevocation{Store: e.describe, Revoked: found && err == nil}
			errs[i] = err
		})
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		switch {
		case err != nil:
			failed++
			answer.Stores[i].Error = err.Error()
			caddy.Log().Named("admin.api.session").Error("revoking a session: a store failed", zap.String("store", all[i].describe), zap.Error(err))
		case answer.Stores[i].Revoked:
			answer.Revoked++
		}
	}
	status := http.StatusOK
	if failed > 0 && failed == len(all) {
		status = http.StatusServiceUnavailable
		answer.Error = "revoking: no store answered; revoke again once they are back"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(answer)
}

// revokeAnswer is the answer of POST /session/revoke.
type revokeAnswer struct {
	// Revoked is how many stores had the session.
	Revoked int               `json:"revoked"`
	Stores  []storeRevocation `json:"stores"`
	// Error is set when every store failed (503), as Caddy's own admin
	// errors are.
	Error string `json:"error,omitempty"`
}

// storeRevocation is what one store said.
type storeRevocation struct {
	Store   string `json:"store"`
	Revoked bool   `json:"revoked"`
	Error   string `json:"error,omitempty"`
}

// userRevocationTTL is how long an admin's revocation of a user lasts in
// the maps: longer than any session's lifetime is of no use, and the maps
// do not know the handlers' lifetimes; 400 days outlasts what browsers
// keep a cookie.
const userRevocationTTL = 400 * 24 * time.Hour

// revokeUser voids every session of user created before now, in every
// revocation map of the loaded configs, and answers
// {"user_revoked": <maps reached>}.
func (a *Admin) revokeUser(w http.ResponseWriter, ctx context.Context, user, except string) error {
	var reached int
	var errs []error
	if except == "" {
		// Every session, cookie sessions included: a cutoff in the maps.
		var err error
		if reached, err = revokeUserEverywhere(ctx, user, userRevocationTTL); err != nil {
			errs = append(errs, err)
		}
	}
	// And the user's sessions in every store that indexes them, but one.
	indexed, deleted := 0, 0
	var all []pooledStore
	stores.Range(func(_, value any) bool {
		all = append(all, value.(pooledStore))
		return true
	})
	for _, store := range all {
		index, ok := store.Store.(sessioncore.UserIndex)
		if !ok {
			continue
		}
		indexed++
		infos, err := index.Sessions(ctx, user)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, info := range infos {
			if info.ID == except {
				continue
			}
			if found, err := store.Delete(ctx, info.ID); err != nil {
				errs = append(errs, err)
			} else if found {
				deleted++
			}
		}
	}
	if reached > 0 || deleted > 0 {
		metrics.revocations.inc("user/admin")
	}
	err := errors.Join(errs...)
	switch {
	case reached == 0 && indexed == 0 && err != nil:
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("revoking a user: %w", err)}
	case reached == 0 && indexed == 0:
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("no session handler has a revocation_store, or a store with user_key")}
	}
	answer := map[string]any{"user_revoked": reached, "sessions_revoked": deleted}
	if err != nil {
		answer["error"] = err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(answer)
}

// Interface guards
var _ caddy.AdminRouter = (*Admin)(nil)
