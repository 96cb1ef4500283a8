package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// What the edge matched is what the app sees: an identity value the
// upstream would read otherwise is not forwarded at all.
func TestForwardedIdentityIsExactlyWhatTheMatcherSees(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { h.Forward = []ForwardHeader{{Key: "user", Header: "X-Remote-User"}} })
	tests := []struct {
		name, user   string // the session's "user" value, as JSON
		want, reason string // want "": not forwarded
	}{
		{"plain", `"admin"`, "admin", ""},
		{"a blank inside", `"Ada Lovelace"`, "Ada Lovelace", ""},
		{"a number", `42`, "42", ""},
		{"blanks around", `" admin\t"`, "", "blank"},
		{"NUL", `"a\u0000b"`, "", "control"},
		{"C1 control", `"x\u0085y"`, "", "control"},
		{"bidi override", `"\u00e4dmin \u202e"`, "", "bidi"},
		{"non-ASCII", `"J\u00fcrgen"`, "", "non_ascii"},
		{"unset: false", `false`, "", ""},
		{"unset: empty", `""`, "", ""},
		{"unset: null", `null`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cookie := login(t, h, `{"user":`+tt.user+`}`)
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Cookie", cookie.Name+"="+cookie.Value)
			r.Header.Set("X-Remote-User", "spoofed")
			var before float64
			if tt.reason != "" {
				before = counterValue(t, metrics.withheld.children[tt.reason])
			}
			var got []string
			_, err := serve(h, newRecorder(), r, func(w http.ResponseWriter, r *http.Request) error {
				got = r.Header.Values("X-Remote-User")
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("X-Remote-User %q reached the upstream", got)
			case tt.want != "" && (len(got) != 1 || got[0] != tt.want):
				t.Errorf("X-Remote-User = %q, want %q", got, tt.want)
			}
			if tt.reason != "" {
				if after := counterValue(t, metrics.withheld.children[tt.reason]); after != before+1 {
					t.Errorf("withheld{reason=%q} went from %v to %v", tt.reason, before, after)
				}
			}
		})
	}
}

// counterValue reads a counter's current value.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A placeholder may land in a response header: control bytes become spaces.
func TestSessionPlaceholdersCarryNoControlBytes(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { h.UserKey = "user" })
	cookie := login(t, h, `{"user":"a\u0000b\r\nc\u007f"}`)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", cookie.Name+"="+cookie.Value)
	repl, err := serve(h, newRecorder(), r, func(http.ResponseWriter, *http.Request) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"http.session.user", "http.auth.user.id"} {
		if got, _ := repl.GetString(name); got != "a b  c " {
			t.Errorf("{%s} = %q, want %q", name, got, "a b  c ")
		}
	}
}

// An upstream's own session cookie that does not open is a rejected
// mutation, counted as one.
func TestRejectedUpstreamCookieCountsAsARejectedMutation(t *testing.T) {
	h := newTestHandler(t, nil)
	before := counterValue(t, metrics.mutations.children["rejected"])
	_, err := serve(h, newRecorder(), httptest.NewRequest("GET", "/", nil), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Add("Set-Cookie", "session=forged; Path=/")
		return nil
	})
	if handlerStatus(err) != http.StatusBadGateway {
		t.Fatalf("err = %v, want 502", err)
	}
	if after := counterValue(t, metrics.mutations.children["rejected"]); after != before+1 {
		t.Errorf("rejected mutations went from %v to %v", before, after)
	}
}
