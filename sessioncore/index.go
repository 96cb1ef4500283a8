package sessioncore

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"
)

// A user's sessions, as the user sees them: where each is used, when it
// was created and last seen (see UserIndex).

// DeviceLabel returns a short label for the device a User-Agent names:
// the browser and the system ("Firefox on Linux"), or the first product
// token for other clients ("curl"). It never returns more than 64 bytes.
func DeviceLabel(userAgent string) string {
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"},
		{"Chromium/", "Chromium"}, {"Safari/", "Safari"},
	} {
		if strings.Contains(userAgent, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, o := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(userAgent, o.token) {
			system = o.name
			break
		}
	}
	var label string
	switch {
	case browser != "" && system != "":
		label = browser + " on " + system
	case browser != "":
		label = browser
	default:
		label, _, _ = strings.Cut(strings.TrimSpace(userAgent), " ")
		label, _, _ = strings.Cut(label, "/")
	}
	if len(label) > 64 || IdentityWithheld(label) != "" {
		return ""
	}
	return label
}

// noteDevice records on s where its request came from, for the store's
// user index.
func (g *Gateway) noteDevice(r *http.Request, s *Session) {
	s.device = DeviceLabel(r.UserAgent())
	if g.recordClientIP {
		s.clientIP, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
}

// listedSession is one of a user's sessions as the upstream sees it.
type listedSession struct {
	IDHash   string    `json:"id_hash"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Device   string    `json:"device,omitempty"`
	ClientIP string    `json:"client_ip,omitempty"`
	Current  bool      `json:"current"`
}

// exposeSessions hands the upstream the list of the session's user's
// sessions, in X-Session-List, when the store keeps a user index.
func (g *Gateway) exposeSessions(ctx context.Context, h http.Header, s *Session) {
	index, ok := g.manager.store.(UserIndex)
	user := g.manager.userOf(s)
	if !ok || user == "" {
		return
	}
	infos, err := index.Sessions(ctx, user)
	if err != nil {
		g.logger.Warn("the user's sessions could not be listed")
		return
	}
	list := make([]listedSession, 0, len(infos))
	for _, info := range infos {
		list = append(list, listedSession{info.IDHash, info.Created, info.LastSeen, info.Device, info.ClientIP, info.ID == s.ID()})
	}
	text, _ := json.Marshal(list) // ASCII: labels and addresses are checked
	h[g.protocol.prefix+"-List"] = []string{string(text)}
}
