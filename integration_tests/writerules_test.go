package integration_tests

import (
	"net/http"
	"testing"
)

// The README's recipe: the login route alone may set who the user is;
// every other route's upstream may change the rest of the session.
func TestOnlyTheLoginRouteSetsTheUser(t *testing.T) {
	up := startUpstream(t, map[string]http.HandlerFunc{
		"/login":     setsSession("X-Session-Update", `{"user":"alice","role":"user"}`),
		"/app/cart":  setsSession("X-Session-Update", `{"cart":[1]}`),
		"/app/admin": setsSession("X-Session-Update", `{"role":"admin"}`),
		"/app/me":    echoSession,
	})
	gw := startGateway(t, up.Addr(), `
	@login path /login
	session @login {
		secret {env.IT_SESSION_SECRET}
	}
	@app not path /login
	session @app {
		secret {env.IT_SESSION_SECRET}
		readonly user role
	}
	reverse_proxy {upstream}
`)
	resp, _ := get(t, gw.URL+"/login", "")
	cookie := sessionCookie(t, resp).Value
	resp, _ = get(t, gw.URL+"/app/cart", cookie)
	if resp.StatusCode != 200 {
		t.Fatalf("a change to the cart: %d", resp.StatusCode)
	}
	cookie = sessionCookie(t, resp).Value
	if resp, _ := get(t, gw.URL+"/app/admin", cookie); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("an app route made the user an admin: %d", resp.StatusCode)
	}
	if _, body := get(t, gw.URL+"/app/me", cookie); body != `{"cart":[1],"role":"user","user":"alice"}` {
		t.Errorf("the session: %s", body)
	}
}

// Two routes of one site see different views of one session; the
// placeholders still see all of it.
func TestRoutesSeeTheirOwnViews(t *testing.T) {
	up := startUpstream(t, map[string]http.HandlerFunc{
		"/login":      setsSession("X-Session-Update", `{"user":"alice","card":"4111","cart":[1]}`),
		"/shop/me":    echoSession,
		"/billing/me": echoSession,
	})
	gw := startGateway(t, up.Addr(), `
	@shop path /shop/*
	session @shop {
		secret {env.IT_SESSION_SECRET}
		hide card
	}
	@billing path /billing/*
	session @billing {
		secret {env.IT_SESSION_SECRET}
		send user card
	}
	@other not path /shop/* /billing/*
	session @other {
		secret {env.IT_SESSION_SECRET}
	}
	header >X-Card {http.session.card}
	reverse_proxy {upstream}
`)
	resp, _ := get(t, gw.URL+"/login", "")
	cookie := sessionCookie(t, resp).Value
	if resp, body := get(t, gw.URL+"/shop/me", cookie); body != `{"cart":[1],"user":"alice"}` || resp.Header.Get("X-Card") != "4111" {
		t.Errorf("the shop sees %s (X-Card %q)", body, resp.Header.Get("X-Card"))
	}
	if _, body := get(t, gw.URL+"/billing/me", cookie); body != `{"card":"4111","user":"alice"}` {
		t.Errorf("billing sees %s", body)
	}
}
