package caddymodule

import (
	"cmp"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// requestRoom is what a request needs in its headers beyond the session's
// cookies: the request line, the usual headers, and a few of the site's
// other cookies.
const requestRoom = 4096

// frontProxyLineLimit is the longest header line the common front proxies
// take by default: nginx's large_client_header_buffers (8k) and Apache's
// LimitRequestFieldSize (8190); frontProxyOtherCookies is what a site's
// other cookies are given of such a line.
const (
	frontProxyLineLimit    = 8190
	frontProxyOtherCookies = 2048
)

// checkCookieBudget refuses a budget for the session's cookies that the
// server's own max_header_size cannot carry together with the rest of a
// request: every request of a user holding such a session would get 431,
// the logout included. A front proxy's limits cannot be known from here;
// a budget beyond theirs is a warning.
func (h *Handler) checkCookieBudget(ctx caddy.Context) error {
	budget := cmp.Or(h.MaxCookieBytes, sessioncore.DefaultMaxCookieBytes)
	// Caddy provisions a server's handlers with the server in the context,
	// its max_header_size already defaulted.
	srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	switch {
	case !ok || srv.MaxHeaderBytes <= 0:
		h.logger.Warn("cannot check max_cookie_bytes against the server's max_header_size; keep the budget plus 4 KiB within it",
			zap.Int("max_cookie_bytes", budget))
	case budget+requestRoom > srv.MaxHeaderBytes:
		return fmt.Errorf("max_cookie_bytes %d needs a server max_header_size of at least %d (the session's cookies and %d bytes for the rest of a request), but the server's is %d: a user holding such a session would get 431 on every request; lower max_cookie_bytes, or raise max_header_size in the global servers options",
			budget, budget+requestRoom, requestRoom, srv.MaxHeaderBytes)
	}
	if budget+frontProxyOtherCookies > frontProxyLineLimit {
		h.logger.Warn("the session's cookies may make a Cookie line longer than nginx (large_client_header_buffers 8k) and Apache (LimitRequestFieldSize 8190) accept by default; raise those limits in any proxy in front of Caddy",
			zap.Int("max_cookie_bytes", budget))
	}
	return nil
}
