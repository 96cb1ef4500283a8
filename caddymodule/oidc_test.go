package caddymodule

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/gorilla/securecookie"
)

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ next, want string }{
		{"/app", "/app"},
		{"/app/reports?year=2026#top", "/app/reports?year=2026#top"},
		{"/a%20b", "/a%20b"},
		{"", "/"},
		{"app", "/"},
		{"//evil.example", "/"},
		{"//evil.example/path", "/"},
		{"https://evil.example", "/"},
		{"http:evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"/%2Fevil.example", "/"},
		{"/%2fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%5cevil.example", "/"},
		{"/%zz", "/"},
		{"/\t/evil.example", "/"},
		{"/\r\nSet-Cookie: x=1", "/"},
		{"/" + strings.Repeat("a", 3000), "/"},
	} {
		if got := safeNext(tc.next); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.next, got, tc.want)
		}
	}
}

func TestParseLogin(t *testing.T) {
	h := new(Handler)
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`session {
		secret {env.SESSION_SECRET}
		login oidc {
			issuer https://id.example.com
			client_id gateway
			client_secret_file /run/secrets/oidc
			scopes openid email
			redirect_path /auth/callback
			login_path /auth/login
			logout_path /auth/logout
			post_logout_redirect https://www.example.com/
			backchannel_logout_path /auth/backchannel
			claims {
				sub uid
				email email
			}
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &OIDCLogin{
		Issuer: "https://id.example.com", ClientID: "gateway", ClientSecretFile: "/run/secrets/oidc",
		Scopes: []string{"openid", "email"}, RedirectPath: "/auth/callback", LoginPath: "/auth/login",
		LogoutPath: "/auth/logout", PostLogoutRedirect: "https://www.example.com/", BackChannelLogoutPath: "/auth/backchannel",
		Claims: map[string]string{"sub": "uid", "email": "email"},
	}
	if h.Login == nil || !reflect.DeepEqual(h.Login.OIDC, want) {
		t.Errorf("parsed %+v, want %+v", h.Login, want)
	}

	for _, tc := range []struct{ block, wantErr string }{
		{"login saml {\n}", "unknown method"},
		{"login oidc {\nclient_id x\n}", "issuer is required"},
		{"login oidc {\nissuer https://id.example.com\n}", "client_id is required"},
		{"login oidc {\nissuer ftp://id.example.com\nclient_id x\n}", "http(s) URL"},
		{"login oidc {\nissuer https://id.example.com\nclient_id x\nlogin_path login\n}", "must start with /"},
		{"login oidc {\nissuer https://id.example.com\nclient_id x\nclient_secret a\nclient_secret_file b\n}", "not both"},
		{"login oidc {\nissuer https://id.example.com\nclient_id x\nclient_id y\n}", "more than once"},
		{"login oidc {\nissuer https://id.example.com\nclient_id x\nprompt login\n}", "unrecognized"},
		{"login oidc {\nissuer https://id.example.com\nclient_id x\nbackchannel_logout_path bc\n}", "must start with /"},
	} {
		err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser("session {\nsecret {env.S}\n" + tc.block + "\n}"))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: error %v, want one containing %q", tc.block, err, tc.wantErr)
		}
	}
}

func TestUsedStatesRefuseReplay(t *testing.T) {
	var u usedStates
	now := time.Now()
	if !u.claim("s1", now) || u.claim("s1", now) {
		t.Fatal("a state must be claimed once")
	}
	// Past the pre-login cookie's lifetime a state is forgotten, once the
	// memory needs room; its cookie no longer verifies by then.
	for i := range maxUsedStates / 2 {
		u.claim(string(rune(i))+"x", now)
	}
	later := now.Add(preLoginLifetime + time.Second)
	if !u.claim("fresh", later) || len(u.seen) != 1 {
		t.Errorf("expired states were kept: %d", len(u.seen))
	}
}

func TestPreLoginCookieExpires(t *testing.T) {
	codec := securecookie.New(deriveKey([]byte("secret"), "hash"), deriveKey([]byte("secret"), "block"))
	codec.SetSerializer(securecookie.JSONEncoder{})
	value, err := codec.Encode("session_login", preLogin{State: "s"})
	if err != nil {
		t.Fatal(err)
	}
	codec.MaxAge(1)
	time.Sleep(2100 * time.Millisecond)
	var pl preLogin
	if err := codec.Decode("session_login", value, &pl); err == nil {
		t.Error("an expired pre-login cookie decoded")
	}
	other := securecookie.New(deriveKey([]byte("secret"), "oidc pre-login hash"), deriveKey([]byte("secret"), "oidc pre-login block"))
	if err := other.Decode("session_login", value, &pl); err == nil {
		t.Error("a pre-login cookie decoded under other keys")
	}
}
