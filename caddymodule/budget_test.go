package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCookieBudgetMustFitTheServersHeaderLimit(t *testing.T) {
	tests := []struct {
		name           string
		budget         int
		maxHeaderBytes int
		wantErr        bool
	}{
		{"the default budget, Caddy's default limit", 0, 16 << 10, false},
		{"12 KiB, Caddy's default limit", 12 << 10, 16 << 10, false},
		{"13 KiB, Caddy's default limit", 13 << 10, 16 << 10, true},
		{"the default budget, a server of 6 KB", 0, 6000, true},
		{"32 KiB, a server of 64 KiB", 32 << 10, 64 << 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{Secret: testSecretLiteral, MaxCookieBytes: tt.budget}
			err := h.Provision(serverContext(t, tt.maxHeaderBytes))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Provision: %v", err)
			}
			if err != nil && !strings.Contains(err.Error(), "max_header_size") {
				t.Errorf("the error %q does not say what to raise", err)
			}
		})
	}
}

// A session over the budget is refused as an oversized session is: 502,
// nothing of the upstream's answer, no cookie.
func TestSessionOverTheBudgetIsNotIssued(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { h.MaxCookieParts = 8 })
	rec := newRecorder()
	_, err := serve(h, rec, httptest.NewRequest("GET", "/", nil), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Session-Update", `{"blob":"`+strings.Repeat("x", 11400)+`"}`)
		return nil
	})
	if handlerStatus(err) != http.StatusBadGateway || !strings.Contains(err.Error(), "max_cookie_bytes") {
		t.Fatalf("err = %v, want a 502 that names the budget", err)
	}
	if lines := rec.header.Values("Set-Cookie"); len(lines) != 0 {
		t.Errorf("Set-Cookie %q", lines)
	}
}
