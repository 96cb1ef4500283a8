package rails

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/caddy-session/sessioncore"
)

type vector struct {
	Name        string   `json:"name"`
	Secret      string   `json:"secret"`
	Fallbacks   []string `json:"fallbacks"`
	KeyDigest   string   `json:"key_digest"`
	CookieName  string   `json:"cookie_name"`
	Cookie      string   `json:"cookie"`
	Now         int64    `json:"now"`
	Expect      string   `json:"expect"`
	PayloadJSON string   `json:"payload_json"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Rails   string   `json:"rails"`
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) < 25 || !strings.HasPrefix(file.Rails, "6.1.") {
		t.Fatalf("%d vectors from Rails %s", len(file.Vectors), file.Rails)
	}
	return file.Vectors
}

func byteSlices(ss []string) [][]byte {
	var out [][]byte
	for _, s := range ss {
		out = append(out, []byte(s))
	}
	return out
}

func newCodec(t testing.TB, digest, secret string, fallbacks ...string) *Codec {
	t.Helper()
	c, err := New(map[string]string{"key_digest": digest}, []byte(secret), byteSlices(fallbacks)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func jsonEqual(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

// TestVectors opens every cookie real Rails made through a Manager, at the
// vector's time: each opens to Rails' JSON, or is refused for its reason.
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			codec := newCodec(t, v.KeyDigest, v.Secret, v.Fallbacks...)
			cfg := sessioncore.DefaultConfig()
			cfg.CookieName = v.CookieName
			now := time.Unix(v.Now, 0)
			m, err := sessioncore.NewManager(cfg, codec, sessioncore.WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Cookie", v.CookieName+"="+v.Cookie)
			s, outcome := m.Open(r)
			if v.Expect != "valid" {
				if string(outcome) != v.Expect {
					t.Errorf("outcome %s, want %s", outcome, v.Expect)
				}
				if s.Len() != 0 {
					t.Errorf("want a fresh session, got %s", s)
				}
				return
			}
			want := sessioncore.OutcomeValid
			if len(v.Fallbacks) > 0 {
				want = sessioncore.OutcomeFallbackKey
			}
			if outcome != want {
				t.Fatalf("outcome %s, want %s", outcome, want)
			}
			if !jsonEqual(t, s.String(), v.PayloadJSON) {
				t.Errorf("upstream sees %s, Rails wrote %s", s, v.PayloadJSON)
			}
			p, _, err := codec.Decode(v.CookieName, v.Cookie)
			if err != nil || string(p.JSON) != v.PayloadJSON {
				t.Errorf("decoded %s, %v; Rails wrote %s", p.JSON, err, v.PayloadJSON)
			}
			// Reissued under the current key, it opens with it.
			value, err := codec.Encode(v.CookieName, sessioncore.Payload{JSON: p.JSON, Expires: now.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if again, i, err := codec.Decode(v.CookieName, value); err != nil || i != 0 || string(again.JSON) != v.PayloadJSON {
				t.Errorf("reissued value opens to %s with key %d, %v", again.JSON, i, err)
			}
		})
	}
}

func TestMarshalIsUndecodable(t *testing.T) {
	for _, v := range loadVectors(t) {
		if !strings.HasPrefix(v.Name, "marshal") {
			continue
		}
		_, _, err := newCodec(t, v.KeyDigest, v.Secret, v.Fallbacks...).Decode(v.CookieName, v.Cookie)
		if !errors.Is(err, sessioncore.ErrUndecodable) || !strings.Contains(err.Error(), "Marshal") {
			t.Errorf("%s: err = %v", v.Name, err)
		}
	}
}

func TestEncodeWritesRailsEnvelope(t *testing.T) {
	c := newCodec(t, "sha1", "k")
	exp := time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.FixedZone("x", 3600))
	value, err := c.Encode("a&b", sessioncore.Payload{JSON: []byte(`{"u":1}`), Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(value, "+/=") || strings.Count(value, "--") != 2 {
		t.Errorf("value %q is not escaped as Rack escapes", value)
	}
	raw, _ := unescape(value)
	parts := bytes.Split(raw, []byte("--"))
	ct, _ := b64.AppendDecode(nil, parts[0])
	iv, _ := b64.AppendDecode(nil, parts[1])
	tag, _ := b64.AppendDecode(nil, parts[2])
	plain, err := c.aeads[0].Open(nil, iv, append(ct, tag...), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"_rails":{"message":"eyJ1IjoxfQ==","exp":"2024-01-02T02:04:05.678Z","pur":"cookie.a\u0026b"}}`
	if string(plain) != want {
		t.Errorf("envelope\n%s\nwant\n%s", plain, want)
	}
	p, _, err := c.Decode("a&b", value)
	if err != nil || !p.Expires.Equal(exp) || string(p.JSON) != `{"u":1}` || !p.Issued.IsZero() {
		t.Errorf("decoded %+v, %v", p, err)
	}
	if _, _, err := c.Decode("other", value); !errors.Is(err, sessioncore.ErrBadSignature) {
		t.Errorf("another cookie's purpose: err = %v", err)
	}
}

func TestOptions(t *testing.T) {
	if _, err := New(map[string]string{"key_digest": "sha256", "iterations": "5", "cipher": "x"}, []byte("k")); err == nil || !strings.Contains(err.Error(), "no option cipher, iterations") {
		t.Errorf("unknown options: err = %v", err)
	}
	if _, err := New(map[string]string{"key_digest": "md5"}, []byte("k")); err == nil || !strings.Contains(err.Error(), `not "md5"`) {
		t.Errorf("bad digest: err = %v", err)
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("empty secret accepted")
	}
	if _, err := New(nil, []byte("k"), []byte("")); err == nil {
		t.Error("empty fallback accepted")
	}
	info, ok := sessioncore.LookupCodec(CodecName)
	if !ok || !info.SharedWithApp || !info.AnySecretLength {
		t.Fatalf("registered as %+v", info)
	}
	if _, err := info.Make(map[string]string{"key_digest": "sha256"}, []byte("k")); err != nil {
		t.Error(err)
	}
}

// TestRailsReadsWhatTheCodecWrites hands cookies the codec made, and the
// Set-Cookie values a Manager wrote, to real Rails' cookie jar.
func TestRailsReadsWhatTheCodecWrites(t *testing.T) {
	if _, err := exec.LookPath("/usr/bin/ruby"); err != nil || exec.Command("/usr/bin/ruby", "-e", `require "action_dispatch"`).Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("Debian's ruby-actionpack is required (apt-get install ruby-actionpack ruby-activesupport ruby-rack)")
		}
		t.Skip("Debian's ruby-actionpack is not installed")
	}
	type query struct {
		Secret     string   `json:"secret"`
		Fallbacks  []string `json:"fallbacks"`
		KeyDigest  string   `json:"key_digest"`
		CookieName string   `json:"cookie_name"`
		Cookie     string   `json:"cookie"`
	}
	sessions := []string{
		`{"session_id":"abc","_csrf_token":"Hk0Sx8VZ5a0nAqL2mW3dVg8n2mYjM8mU0lT4ZqkR8gE=","user_id":42}`,
		`{"m":"<b>Zoë & 😀 中文</b>","ls":"\u2028","n":[1,2.5,{"x":null}],"t":true}`,
		`{}`,
	}
	var queries []query
	var want []string
	for _, digest := range []string{"sha1", "sha256"} {
		c := newCodec(t, digest, "current-secret-key-base", "old-secret-key-base")
		for i, s := range sessions {
			p := sessioncore.Payload{JSON: []byte(s)}
			if i%2 == 0 {
				p.Expires = time.Now().Add(time.Hour)
			}
			value, err := c.Encode("_app_session", p)
			if err != nil {
				t.Fatal(err)
			}
			queries = append(queries, query{"current-secret-key-base", nil, digest, "_app_session", value})
			want = append(want, s)
		}
		// Past its exp, for another cookie, or under a key Rails lacks: not read.
		expired, _ := c.Encode("_app_session", sessioncore.Payload{JSON: []byte(`{"a":1}`), Expires: time.Now().Add(-time.Second)})
		other, _ := c.Encode("_other", sessioncore.Payload{JSON: []byte(`{"a":1}`)})
		old := newCodec(t, digest, "old-secret-key-base")
		rotated, _ := old.Encode("_app_session", sessioncore.Payload{JSON: []byte(`{"a":2}`)})
		queries = append(queries,
			query{"current-secret-key-base", nil, digest, "_app_session", expired},
			query{"current-secret-key-base", nil, digest, "_app_session", other},
			query{"current-secret-key-base", nil, digest, "_app_session", rotated},
			query{"current-secret-key-base", []string{"old-secret-key-base"}, digest, "_app_session", rotated})
		want = append(want, "null", "null", "null", `{"a":2}`)
	}
	// A Manager's Set-Cookie line, as a browser would send it back.
	m, _ := sessioncore.NewManager(sessioncore.Config{CookieName: "_app_session", CookiePath: "/", Lifetime: time.Hour}, newCodec(t, "sha1", "current-secret-key-base"))
	s, _ := m.Open(httptest.NewRequest(http.MethodGet, "/", nil))
	s.Set("user", json.RawMessage(`"alice"`))
	h := http.Header{}
	if _, err := m.Save(t.Context(), s, h); err != nil {
		t.Fatal(err)
	}
	setCookie, err := http.ParseSetCookie(h.Get("Set-Cookie"))
	if err != nil {
		t.Fatal(err)
	}
	queries = append(queries, query{"current-secret-key-base", nil, "sha1", "_app_session", setCookie.Value})
	want = append(want, `{"user":"alice"}`)

	var in bytes.Buffer
	for _, q := range queries {
		line, _ := json.Marshal(q)
		in.Write(append(line, '\n'))
	}
	cmd := exec.Command("/usr/bin/ruby", "testdata/read_cookies.rb")
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ruby: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for i := 0; sc.Scan(); i++ {
		var got struct{ Session json.RawMessage }
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		if !jsonEqual(t, string(got.Session), want[i]) {
			t.Errorf("query %d (%s): Rails reads %s, want %s", i, queries[i].KeyDigest, got.Session, want[i])
		}
		if i == len(want)-1 && sc.Err() == nil {
			return
		}
	}
	t.Fatalf("Rails answered %d lines, want %d:\n%s", strings.Count(string(out), "\n"), len(want), out)
}
