package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestViewsAndWriteRulesCaddyfile(t *testing.T) {
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("session {\n secret {env.S}\n send user role\n readonly role\n}")); err != nil {
		t.Fatal(err)
	}
	if strings.Join(h.Send, ",") != "user,role" || strings.Join(h.Readonly, ",") != "role" {
		t.Errorf("send %q readonly %q", h.Send, h.Readonly)
	}
	for _, bad := range []string{"send a\n hide b", "writable a\n readonly b", "send", "hide a\n hide b"} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("session {\n secret {env.S}\n " + bad + "\n}")); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestViewsAndWriteRules(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) {
		h.Send = []string{"user", "cart"}
		h.Readonly = []string{"role"}
	})
	// Logged in by another route, without rules: this one could not set role.
	cookie := login(t, newTestHandler(t, nil), `{"user":"alice","role":"user","cart":[1]}`)
	request := func() *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(cookie)
		return r
	}
	var seen string
	repl, err := serve(h, newRecorder(), request(), func(w http.ResponseWriter, r *http.Request) error {
		seen = r.Header.Get("X-Session")
		return nil
	})
	if err != nil || seen != `{"cart":[1],"user":"alice"}` {
		t.Errorf("X-Session %s, %v", seen, err)
	}
	if role, _ := repl.GetString("http.session.role"); role != "user" {
		t.Errorf("{http.session.role} = %q: placeholders see the whole session", role)
	}

	_, err = serve(h, newRecorder(), request(), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Session-Update", `{"role":"admin"}`)
		w.WriteHeader(200)
		return nil
	})
	if handlerStatus(err) != http.StatusBadGateway || !strings.Contains(err.Error(), `"role"`) || strings.Contains(err.Error(), "admin") {
		t.Errorf("a readonly key changed: %v", err)
	}

	w := newRecorder()
	if _, err = serve(h, w, request(), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Session-Update", `{"cart":[1,2]}`)
		w.WriteHeader(200)
		return nil
	}); err != nil {
		t.Fatalf("a writable key: %v", err)
	}
	if _, header := w.final(t); len(header["Set-Cookie"]) != 1 {
		t.Errorf("no cookie for an allowed change: %v", header)
	}
}
