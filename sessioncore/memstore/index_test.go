package memstore

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// A user's sessions are listed with their devices, the current one marked;
// entries leave the index when their session is emptied, renewed, revoked
// or expires.
func TestUserIndex(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	store := New(100, clock.Now)
	codec, _ := sessioncore.NewSecureCookieCodec(testSecret)
	manager, err := sessioncore.NewManager(sessioncore.DefaultConfig(), codec, sessioncore.WithClock(clock.Now),
		sessioncore.WithStore(store), sessioncore.WithUserKey("user"))
	must(t, err)
	g, err := sessioncore.NewGateway(manager, sessioncore.GatewayConfig{ExposeSessions: true, RecordClientIP: true})
	must(t, err)

	// request runs one request through g and returns the upstream's
	// X-Session-List and the cookie set, if any.
	request := func(cookie, userAgent string, upstream ...string) (string, string) {
		t.Helper()
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("User-Agent", userAgent)
		r.RemoteAddr = "192.0.2.7:5555"
		if cookie != "" {
			r.Header.Set("Cookie", "session="+cookie)
		}
		header := http.Header{}
		a := g.Arrive(r, header)
		list := r.Header.Get("X-Session-List")
		for i := 0; i+1 < len(upstream); i += 2 {
			header.Set(upstream[i], upstream[i+1])
		}
		if d := g.Depart(ctx, a.Session, header); d.Refused != nil {
			t.Fatalf("Depart: %v", d.Refused)
		}
		set := ""
		if c, err := http.ParseSetCookie(header.Get("Set-Cookie")); err == nil && c.MaxAge >= 0 {
			set = c.Value
		}
		return list, set
	}
	const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
	_, laptop := request("", firefox, "X-Session-Update", `{"user":"alice"}`)
	clock.Advance(time.Minute)
	_, phone := request("", "curl/8.5.0", "X-Session-Update", `{"user":"alice"}`)
	request("", "curl/8.5.0", "X-Session-Update", `{"user":"bob"}`)

	list, _ := request(laptop, firefox)
	var listed []struct {
		IDHash   string `json:"id_hash"`
		Device   string `json:"device"`
		ClientIP string `json:"client_ip"`
		Current  bool   `json:"current"`
	}
	must(t, json.Unmarshal([]byte(list), &listed))
	if len(listed) != 2 || listed[0].Device != "Firefox on Linux" || !listed[0].Current ||
		listed[1].Device != "curl" || listed[1].Current || listed[0].ClientIP != "192.0.2.7" || listed[0].IDHash == "" {
		t.Errorf("X-Session-List %s", list)
	}
	if strings.Contains(list, laptop) {
		t.Error("the list carries a session cookie")
	}

	// Emptied: gone from the index.
	request(phone, "curl/8.5.0", "X-Session-Replace", `{}`)
	if infos, _ := store.Sessions(ctx, "alice"); len(infos) != 1 {
		t.Errorf("after emptying: %d sessions", len(infos))
	}
	// Renewed: the old ID goes, the new one comes.
	_, renewed := request(laptop, firefox, "X-Session-Renew", "true")
	if infos, _ := store.Sessions(ctx, "alice"); len(infos) != 1 || renewed == "" {
		t.Errorf("after a renewal: %d sessions", len(infos))
	}
	// Expired: gone, and the index does not outgrow the sessions.
	clock.Advance(32 * 24 * time.Hour)
	if infos, _ := store.Sessions(ctx, "alice"); len(infos) != 0 || store.Users() != 1 {
		t.Errorf("after expiry: %d sessions, %d users", len(infos), store.Users())
	}
}
