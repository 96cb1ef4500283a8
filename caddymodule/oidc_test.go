package caddymodule

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/sessiongate/caddy-session/sessioncore"
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
		{"/a/../%2fevil.example", "/"},
		{"/./%2Fevil.example", "/"},
		{"/a/%2e%2e/b", "/"},
		{"/app/./x", "/"},
		{"/app/", "/app/"},
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
			forward_access_token X-Forwarded-Access-Token
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
		ForwardAccessToken: "X-Forwarded-Access-Token",
		Claims:             map[string]string{"sub": "uid", "email": "email"},
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
		{"login oidc {\nissuer https://id.example.com\nclient_id x\nredirect_url /cb\n}", "absolute http(s) URL"},
		{"login oidc {\nissuer https://id.example.com\nclient_id x\nredirect_url https://app.example.com/cb?x=1\n}", "no query"},
		{"login oidc {\nissuer https://id.example.com\nclient_id x\nredirect_url https://app.example.com/cb\nredirect_path /other\n}", "set one of them"},
	} {
		err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser("session {\nsecret {env.S}\n" + tc.block + "\n}"))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: error %v, want one containing %q", tc.block, err, tc.wantErr)
		}
	}
}

func TestUsedTokensRefuseReplayAndEvict(t *testing.T) {
	var u usedTokens
	now := time.Now()
	if !u.claim("s1", now) || u.claim("s1", now) || !u.seen("s1") {
		t.Fatal("a value must be claimed once")
	}
	// Full of young values, the memory drops its oldest rather than
	// refusing new ones: filling it cannot lock logins out.
	for i := range maxUsedTokens {
		u.claim(strconv.Itoa(i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if !u.claim("fresh", now.Add(time.Hour/2)) {
		t.Fatal("a full memory refused a new value")
	}
	if u.seen("s1") || len(u.used) > maxUsedTokens*3/4+1 {
		t.Errorf("the oldest values were kept: %d", len(u.used))
	}
	if !u.seen(strconv.Itoa(maxUsedTokens - 1)) {
		t.Error("the youngest values were dropped")
	}
}

func TestLoginMutation(t *testing.T) {
	o := &oidcLogin{claims: map[string]string{"sub": "uid", "email": "email"}}
	claims := map[string]json.RawMessage{"sub": json.RawMessage(`"bob"`)}
	for _, tc := range []struct {
		name, before, want string
	}{
		{"anonymous: keys the apps wrote stay", `{"cart":[1]}`, `{"cart":[1],"uid":"bob"}`},
		{"the same user again", `{"cart":[1],"uid":"bob","email":"b@x"}`, `{"cart":[1],"uid":"bob"}`},
		{"another user: nothing of theirs passes", `{"cart":[1],"uid":"alice","role":"admin"}`, `{"uid":"bob"}`},
	} {
		s := sessioncore.NewSession()
		var values map[string]json.RawMessage
		_ = json.Unmarshal([]byte(tc.before), &values)
		for k, v := range values {
			_ = s.Set(k, v)
		}
		if err := s.Apply(o.loginMutation(s, claims)); err != nil {
			t.Fatal(err)
		}
		var got, want any
		_ = json.Unmarshal(s.AppendJSON(nil), &got)
		_ = json.Unmarshal([]byte(tc.want), &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s, want %s", tc.name, s.AppendJSON(nil), tc.want)
		}
	}
}

func TestPreLoginCookieExpires(t *testing.T) {
	codec, err := preLoginCodec([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
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
	other, err := preLoginCodec([]byte("another secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Decode("session_login", value, &pl); err == nil {
		t.Error("a pre-login cookie decoded under other keys")
	}
}

func TestLogoutWithTheStoreDown(t *testing.T) {
	o := &oidcLogin{cfg: &OIDCLogin{}}
	w := httptest.NewRecorder()
	err := o.serveLogout(sessioncore.NewNullSession(errors.New("store down")), w, httptest.NewRequest("GET", "/_session/logout", nil))
	if handlerStatus(err) != http.StatusServiceUnavailable || w.Header().Get("Location") != "" {
		t.Errorf("logout with a null session: %v, Location %q", err, w.Header().Get("Location"))
	}
}
