package integration_tests

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A memory store stays within its bounds, in sessions and in bytes, and a
// session stays within max_session_size: a change past it is refused like
// a malformed one, the stored session intact.
func TestMemoryStoreBoundsThroughCaddy(t *testing.T) {
	up := startUpstream(t, growRoutes())
	gw := startGateway(t, up.Addr(), `
	session {
		secret {env.IT_SESSION_SECRET}
		store memory {
			max_sessions 5
			max_memory 1MiB
			max_session_size 2KiB
		}
	}
	reverse_proxy {upstream}
`)
	resp, _ := get(t, gw.URL+"/grow?n=100", "")
	cookie := sessionCookie(t, resp).Value
	resp, body := get(t, gw.URL+"/grow?n=3000", cookie)
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(body, "xxx") {
		t.Errorf("a session past max_session_size: %d", resp.StatusCode)
	}
	noSessionCookie(t, resp)
	if !gw.WaitForLog("max_session_size") {
		t.Error("no log line names max_session_size")
	}
	if _, body := get(t, gw.URL+"/me", cookie); body != `{"blob":"`+strings.Repeat("x", 100)+`"}` {
		t.Errorf("the stored session after the refusal: %.80s", body)
	}

	// Six more sessions: the least recently used go, and are counted.
	for range 6 {
		get(t, gw.URL+"/grow?n=10", "")
	}
	if _, body := get(t, gw.URL+"/me", cookie); body != "{}" {
		t.Errorf("the least recently used session survived: %.80s", body)
	}
	_, metrics := get(t, gw.Admin+"/metrics", "")
	m := regexp.MustCompile(`caddy_session_store_evictions_total\{cause="max_sessions"\} (\d+)`).FindStringSubmatch(metrics)
	if len(m) < 2 {
		t.Error("/metrics lacks caddy_session_store_evictions_total")
	} else if n, _ := strconv.Atoi(m[1]); n < 2 {
		t.Errorf("%d evictions counted, want at least 2", n)
	}
	for _, want := range []string{`caddy_session_store_evictions_total{cause="max_memory"} 0`, `caddy_session_mutations_total{result="rejected"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
