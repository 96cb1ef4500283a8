package sessioncore

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestHeaderProtocolOwns(t *testing.T) {
	p, err := newHeaderProtocol("X-Session")
	if err != nil {
		t.Fatal(err)
	}
	owned := []string{"X-Session", "x-session", "X-SESSION", "X_Session", "x_session_update", "X-Session-Foo", "X-Sessionid", "X_SESSION-Replace"}
	notOwned := []string{"X-Sess", "Session", "X-Sessio", "XX-Session", "Cookie", ""}
	for _, name := range owned {
		if !p.Owns(name) {
			t.Errorf("%q should belong to the protocol", name)
		}
	}
	for _, name := range notOwned {
		if p.Owns(name) {
			t.Errorf("%q should not belong to the protocol", name)
		}
	}
	if _, err := newHeaderProtocol("Bad Prefix"); err == nil {
		t.Error("a prefix with a space was accepted")
	}
}

func TestWriteRequestRemovesSpoofedHeaders(t *testing.T) {
	p, _ := newHeaderProtocol("X-Session")
	h := http.Header{}
	for _, name := range []string{"X-Session", "X_Session", "x-session-update", "X-SESSION-USER", "X_session_replace"} {
		h[name] = []string{`{"user":"admin"}`}
	}
	h.Set("Accept", "text/html")
	s := NewSession()
	_ = s.Set("user", json.RawMessage(`"alice"`))
	p.WriteRequest(h, s)
	if len(h) != 2 || h.Get("Accept") != "text/html" || h.Get("X-Session") != `{"user":"alice"}` {
		t.Errorf("headers after WriteRequest: %v", h)
	}
	if n := len(h["X-Session"]); n != 1 {
		t.Errorf("X-Session has %d values", n)
	}
}

func TestTakeMutation(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string][]string
		initial string
		want    string // session after applying; "" when the mutation is rejected
		errHas  string
	}{
		{"nothing", nil, `{"a":1}`, `{"a":1}`, ""},
		{"update merges", map[string][]string{"X-Session-Update": {`{"b":2}`}}, `{"a":1}`, `{"a":1,"b":2}`, ""},
		{"null deletes", map[string][]string{"X-Session-Update": {`{"a":null}`}}, `{"a":1,"b":2}`, `{"b":2}`, ""},
		{"nested objects merge", map[string][]string{"X-Session-Update": {`{"p":{"y":2,"x":null}}`}}, `{"p":{"x":1,"z":3}}`, `{"p":{"y":2,"z":3}}`, ""},
		{"nulls inside a new object are dropped", map[string][]string{"X-Session-Update": {`{"p":{"y":null,"z":1}}`}}, `{}`, `{"p":{"z":1}}`, ""},
		{"arrays replace", map[string][]string{"X-Session-Update": {`{"l":[3]}`}}, `{"l":[1,2]}`, `{"l":[3]}`, ""},
		{"updates apply in order", map[string][]string{"X-Session-Update": {`{"a":1}`, `{"a":2}`, `{"b":3}`}}, `{}`, `{"a":2,"b":3}`, ""},
		{"replace then update", map[string][]string{"X-Session-Replace": {`{"r":1}`}, "X-Session-Update": {`{"u":2}`}}, `{"a":1}`, `{"r":1,"u":2}`, ""},
		{"replace with empty", map[string][]string{"X-Session-Replace": {`{}`}}, `{"a":1}`, `{}`, ""},
		{"underscore spelling counts", map[string][]string{"X_Session_Update": {`{"b":2}`}}, `{}`, `{"b":2}`, ""},
		{"unicode is escaped", map[string][]string{"X-Session-Update": {`{"n":"Zoë 😀"}`}}, `{}`, `{"n":"Zo\u00eb \ud83d\ude00"}`, ""},
		{"whitespace is compacted", map[string][]string{"X-Session-Update": {"{ \"a\" : [ 1 , 2 ] }"}}, `{}`, `{"a":[1,2]}`, ""},
		{"other prefixed headers are only stripped", map[string][]string{"X-Session": {`{"x":1}`}, "X-Session-Foo": {"1"}}, `{"a":1}`, `{"a":1}`, ""},
		{"not JSON", map[string][]string{"X-Session-Update": {`{"a":`}}, `{"a":1}`, "", "not valid JSON"},
		{"not an object", map[string][]string{"X-Session-Update": {`[1]`}}, `{"a":1}`, "", "not a JSON object"},
		{"bad second update", map[string][]string{"X-Session-Update": {`{"b":1}`, `nope`}}, `{"a":1}`, "", "X-Session-Update"},
		{"too deep", map[string][]string{"X-Session-Update": {`{"a":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`}}, `{}`, "", "nested deeper"},
		{"two replacements", map[string][]string{"X-Session-Replace": {`{}`, `{}`}}, `{}`, "", "more than one replacement"},
		{"two spellings", map[string][]string{"X-Session-Update": {`{}`}, "X_Session_Update": {`{}`}}, `{}`, "", "one spelling"},
		{"too large", map[string][]string{"X-Session-Update": {`{"a":"` + strings.Repeat("x", MaxMutationBytes) + `"}`}}, `{}`, "", "exceed"},
	}
	p, _ := newHeaderProtocol("X-Session")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"text/plain"}}
			for k, v := range tt.headers {
				h[k] = v
			}
			s := sessionWith(t, tt.initial)
			m, err := p.TakeMutation(h)
			if len(h) != 1 {
				t.Errorf("protocol headers left in the response: %v", h)
			}
			if tt.errHas != "" {
				var me *MutationError
				if !errors.As(err, &me) || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want a MutationError with %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Apply(m); err != nil {
				t.Fatal(err)
			}
			if got := s.String(); got != tt.want {
				t.Errorf("session = %s, want %s", got, tt.want)
			}
			if wantModified := len(tt.headers) > 0 && !m.IsEmpty(); s.Modified() != wantModified {
				t.Errorf("modified = %v, want %v", s.Modified(), wantModified)
			}
		})
	}
}

func TestAnUnchangingUpdateStillModifies(t *testing.T) {
	s := sessionWith(t, `{"a":1}`)
	var m Mutation
	if err := m.AddUpdate([]byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(&m); err != nil || !s.Modified() {
		t.Errorf("modified = %v, err = %v; Flask marks any write modified", s.Modified(), err)
	}
}

func sessionWith(t *testing.T, values string) *Session {
	t.Helper()
	members, err := parseObject([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	return sessionFromPayload(members, testEpoch, nil, nil)
}

func TestNormalizeJSON(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{`"plain"`, `"plain"`, ""},
		{` { "b" : 1 , "a" : 2 } `, `{"b":1,"a":2}`, ""},
		{`"é"`, `"\u00e9"`, ""},
		{`"😀"`, `"\ud83d\ude00"`, ""},
		{"\"\x7f\"", `"\u007f"`, ""},
		{`"<a&b>"`, `"<a&b>"`, ""},
		{`"a\"[{b"`, `"a\"[{b"`, ""},
		{`1.50`, `1.50`, ""},
		{`18446744073709551617`, `18446744073709551617`, ""},
		{`NaN`, "", "not valid JSON"},
		{``, "", "not valid JSON"},
		{`{} {}`, "", "not valid JSON"},
		{strings.Repeat("[", MaxNestingDepth) + strings.Repeat("]", MaxNestingDepth), strings.Repeat("[", MaxNestingDepth) + strings.Repeat("]", MaxNestingDepth), ""},
		{strings.Repeat("[", MaxNestingDepth+1) + strings.Repeat("]", MaxNestingDepth+1), "", "nested deeper"},
		{`"` + strings.Repeat("[", 100) + `"`, `"` + strings.Repeat("[", 100) + `"`, ""},
	}
	for _, tt := range tests {
		got, err := normalizeJSON([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%q -> %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSessionJSONKeysAreSortedAndEscaped(t *testing.T) {
	s := NewSession()
	for _, k := range []string{"b", "a1", "ä", "A", "_x", "a", "<k>"} {
		_ = s.Set(k, json.RawMessage(`0`))
	}
	want := `{"<k>":0,"A":0,"_x":0,"a":0,"a1":0,"b":0,"\u00e4":0}`
	if got := s.String(); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestTruthy(t *testing.T) {
	for v, want := range map[string]bool{
		"true": true, "false": false, "null": false, "0": false, "0.0": false, "-0": false,
		"1": true, "-2.5": true, `""`: false, `"x"`: true, "[]": false, "[0]": true, "{}": false, `{"a":1}`: true,
	} {
		if got := truthy(json.RawMessage(v)); got != want {
			t.Errorf("truthy(%s) = %v, want %v", v, got, want)
		}
	}
}
