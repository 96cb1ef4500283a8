package sessioncore

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// flaskVectors is the file make_vectors.py writes from real Flask.
type flaskVectors struct {
	Flask   string `json:"flask"`
	Vectors []struct {
		Name        string   `json:"name"`
		Secret      string   `json:"secret"`
		Fallbacks   []string `json:"fallbacks"`
		Cookie      string   `json:"cookie"`
		Now         int64    `json:"now"`
		MaxAge      int64    `json:"max_age"`
		Expect      string   `json:"expect"`
		PayloadJSON string   `json:"payload_json"`
	} `json:"vectors"`
}

// plainViews is what the upstream sees in X-Session for the vectors with
// tagged values (the others it sees as Flask stored them).
var plainViews = map[string]string{
	"tuple":            `{"t":[1,2,"x"]}`,
	"bytes":            `{"b":"/wBhYg=="}`,
	"markup":           `{"m":"<b>hi</b>"}`,
	"uuid":             `{"u":"12345678-1234-5678-1234-567812345678"}`,
	"datetime":         `{"d":"2024-01-02T03:04:05Z"}`,
	"tag_escape":       `{"x":{" t":"x"},"y":{" t__":"y"},"z":{" di":" di"}}`,
	"toplevel_tag_key": `{" t":[1,2]}`,
	"flashes":          `{"_flashes":[["message","hello"],["error","bad things"]]}`,
}

func TestFlaskVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/flask/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file flaskVectors
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) < 30 {
		t.Fatalf("only %d vectors", len(file.Vectors))
	}
	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			var fallbacks [][]byte
			for _, f := range v.Fallbacks {
				fallbacks = append(fallbacks, []byte(f))
			}
			codec, err := NewFlaskCodec([]byte(v.Secret), fallbacks...)
			if err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.Lifetime = time.Duration(v.MaxAge) * time.Second
			now := time.Unix(v.Now, 0)
			manager, err := NewManager(cfg, codec, WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			s, outcome := manager.Open(requestWithCookie("session", v.Cookie))
			switch v.Expect {
			case "valid":
				if outcome != OutcomeValid && outcome != OutcomeFallbackKey {
					t.Fatalf("outcome %s, want the cookie to open", outcome)
				}
				if (outcome == OutcomeFallbackKey) != (len(v.Fallbacks) > 0) {
					t.Errorf("outcome %s with fallbacks %v", outcome, v.Fallbacks)
				}
				checkFlaskValid(t, codec, s, v.Name, v.Cookie, v.PayloadJSON, len(v.Fallbacks) == 0)
			case "bad_signature", "expired", "new", "undecodable":
				// Flask gives an empty session for the first three and a
				// 500 for the last; the gateway, a fresh session for all.
				if string(outcome) != v.Expect {
					t.Errorf("outcome %s, want %s", outcome, v.Expect)
				}
			default:
				t.Fatalf("unknown expectation %q", v.Expect)
			}
			if v.Expect != "valid" && (s.Len() != 0 || s.IsNull()) {
				t.Errorf("want a fresh session, got %s", s)
			}
		})
	}
}

func checkFlaskValid(t *testing.T, codec *FlaskCodec, s *Session, name, cookie, payloadJSON string, current bool) {
	t.Helper()
	original, _, err := codec.Decode("session", cookie)
	if err != nil {
		t.Fatal(err)
	}
	// Values keep Flask's exact tagged bytes.
	if got := string(s.appendStored(nil)); got != string(unescapeTopLevelTag([]byte(payloadJSON))) {
		t.Errorf("stored %s, Flask wrote %s", got, payloadJSON)
	}
	want, tagged := plainViews[name]
	if !tagged {
		want = payloadJSON
	}
	if got := s.String(); got != want {
		t.Errorf("upstream sees %s, want %s", got, want)
	}
	// Re-encoding at the same time gives Flask's own bytes, except where
	// zlib differs (Go's deflate output is not CPython's); those must
	// decode to the same JSON.
	ours, err := codec.Encode("session", Payload{JSON: s.appendStored(nil), Issued: original.Issued})
	if err != nil {
		t.Fatal(err)
	}
	if current && !strings.HasPrefix(cookie, ".") && !strings.HasPrefix(ours, ".") && ours != cookie {
		t.Errorf("re-encoded\n%s\nFlask wrote\n%s", ours, cookie)
	}
	p, _, err := codec.Decode("session", ours)
	if err != nil || string(escapeTopLevelTag(p.JSON)) != payloadJSON {
		t.Errorf("our cookie decodes to %s, %v", p.JSON, err)
	}
	// Reissuing the unchanged session reuses Flask's payload, compressed
	// or not: at the same time and with the current key, Flask's very
	// cookie comes back.
	reissued, err := codec.Encode("session", Payload{Issued: original.Issued, Sealed: original.Sealed})
	if err != nil {
		t.Fatal(err)
	}
	if current && reissued != cookie {
		t.Errorf("reissued\n%s\nFlask wrote\n%s", reissued, cookie)
	}
}

func TestFlaskUpstreamWritesPlainJSONStoredTagged(t *testing.T) {
	codec, _ := NewFlaskCodec([]byte("k"))
	manager, _ := NewManager(DefaultConfig(), codec)
	s, _ := manager.Open(requestWithCookie("session", ""))
	var m Mutation
	for _, patch := range []string{`{"a":{" t":"looks like a tag"},"l":[{" b":1}],"n":1}`} {
		if err := m.AddUpdate([]byte(patch)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Apply(&m); err != nil {
		t.Fatal(err)
	}
	if got, want := string(s.appendStored(nil)), `{"a":{" di":{" t__":"looks like a tag"}},"l":[{" di":{" b__":1}}],"n":1}`; got != want {
		t.Errorf("stored %s, want %s", got, want)
	}
	if got, want := s.String(), `{"a":{" t":"looks like a tag"},"l":[{" b":1}],"n":1}`; got != want {
		t.Errorf("plain %s, want %s", got, want)
	}
}

func TestFlaskPatchKeepsUntouchedTaggedValues(t *testing.T) {
	codec, _ := NewFlaskCodec([]byte("k"))
	manager, _ := NewManager(DefaultConfig(), codec)
	members, _ := parseObject([]byte(`{"_flashes":[{" t":["message","hi"]}],"when":{" d":"Tue, 02 Jan 2024 03:04:05 GMT"}}`))
	s := sessionFromPayload(members, time.Time{}, manager.form, nil)
	var m Mutation
	_ = m.AddUpdate([]byte(`{"user":"alice"}`))
	if err := s.Apply(&m); err != nil {
		t.Fatal(err)
	}
	want := `{"_flashes":[{" t":["message","hi"]}],"user":"alice","when":{" d":"Tue, 02 Jan 2024 03:04:05 GMT"}}`
	if got := string(s.appendStored(nil)); got != want {
		t.Errorf("stored %s, want %s", got, want)
	}
}

func TestFlaskCodecRefusesZlibBomb(t *testing.T) {
	codec, _ := NewFlaskCodec([]byte("k"))
	bomb := `{"k":"` + strings.Repeat("a", MaxInflatedPayload+10) + `"}`
	value, _ := codec.Encode("session", Payload{JSON: []byte(bomb), Issued: time.Now()})
	if len(value) > MaxCookieSize {
		t.Skipf("compressed bomb is %d bytes", len(value))
	}
	if _, _, err := codec.Decode("session", value); err == nil || !strings.Contains(err.Error(), "inflates beyond") {
		t.Errorf("err = %v", err)
	}
}

func TestFlaskCodecRequiresASecret(t *testing.T) {
	if _, err := NewFlaskCodec(nil); err == nil {
		t.Error("empty secret accepted")
	}
	if _, err := NewFlaskCodec([]byte("k"), []byte("")); err == nil {
		t.Error("empty fallback accepted")
	}
}
