package integration_tests

import (
	"bufio"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Helpers for the tests of Caddyfile.example, whose two sites name their
// cookies demo_session and edge_session.

// namedCookie returns the cookie called name that resp sets, failing the
// test unless there is exactly one.
func namedCookie(t *testing.T, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	var found []*http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == name {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s Set-Cookie, got %q", name, resp.Header.Values("Set-Cookie"))
	}
	return found[0]
}

// getCookies sends a GET to url with the given Cookie line ("" for none)
// and extra headers as name, value pairs.
func getCookies(t *testing.T, url, cookies string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookies != "" {
		req.Header.Set("Cookie", cookies)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return do(t, req)
}

// listeners returns the local addresses of the TCP sockets listening on
// port on this machine, from /proc/net/tcp and /proc/net/tcp6: what the
// kernel has bound, whatever the configuration says.
func listeners(t *testing.T, port int) []net.IP {
	t.Helper()
	var ips []net.IP
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if os.IsNotExist(err) && file == "/proc/net/tcp6" {
			continue // a kernel without IPv6
		}
		if err != nil {
			t.Skipf("cannot read the listening sockets: %v", err)
		}
		scan := bufio.NewScanner(f)
		scan.Scan() // the heading
		for scan.Scan() {
			fields := strings.Fields(scan.Text())
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			addr, portHex, ok := strings.Cut(fields[1], ":")
			p, err := strconv.ParseUint(portHex, 16, 16)
			if !ok || err != nil || int(p) != port {
				continue
			}
			b, err := hex.DecodeString(addr)
			if err != nil || (len(b) != 4 && len(b) != 16) {
				t.Fatalf("%s: cannot read %q", file, fields[1])
			}
			// The kernel prints each 32-bit word in host order (little
			// endian here).
			for i := 0; i < len(b); i += 4 {
				b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
			}
			ips = append(ips, net.IP(b))
		}
		f.Close()
	}
	return ips
}

// requireLoopbackOnly fails the test unless something listens on port, and
// only on loopback addresses; with want, on exactly those.
func requireLoopbackOnly(t *testing.T, what string, port int, want ...string) {
	t.Helper()
	ips := listeners(t, port)
	if len(ips) == 0 {
		t.Errorf("%s: nothing listens on port %d", what, port)
	}
	var got []string
	for _, ip := range ips {
		if !ip.IsLoopback() {
			t.Errorf("%s: listens on %s, port %d: not loopback", what, ip, port)
		}
		got = append(got, ip.String())
	}
	for _, w := range want {
		if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+w+" ") {
			t.Errorf("%s: does not listen on %s (listens on %v)", what, w, got)
		}
	}
}
