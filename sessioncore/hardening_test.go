package sessioncore

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fixedCodec opens every value as the same payload, to test the
// Manager's checks on what a codec returns.
type fixedCodec struct{ p Payload }

func (c fixedCodec) Encode(string, Payload) (string, error)      { return "x", nil }
func (c fixedCodec) Decode(string, string) (Payload, int, error) { return c.p, 0, nil }

func TestOpenRejectsIssueTimesThatWouldOverflow(t *testing.T) {
	for _, issued := range []time.Time{time.Unix(1<<62, 0), time.Unix(-1<<62, 0)} {
		manager, _ := NewManager(DefaultConfig(), fixedCodec{Payload{JSON: []byte(`{"a":1}`), Issued: issued}})
		if s, outcome := manager.Open(requestWithCookie("session", "x")); outcome != OutcomeExpired || s.Len() != 0 {
			t.Errorf("issued %v: %s %s", issued, outcome, s)
		}
	}
}

func TestOpenTakesTheFirstCookieEvenIfMalformed(t *testing.T) {
	clock := &testClock{t: testEpoch}
	manager := newTestManager(t, DefaultConfig(), clock)
	valid := issue(t, manager, `{"user":"alice"}`)
	r := requestWithCookie("session", "")
	r.Header.Set("Cookie", `session=bad"v; session=`+valid)
	if s, _ := manager.Open(r); s.Len() != 0 {
		t.Errorf("the second cookie was used: %s", s)
	}
	r.Header.Set("Cookie", `session="`+valid+`"`)
	if s, _ := manager.Open(r); s.String() != `{"user":"alice"}` {
		t.Errorf("a quoted cookie did not open: %s", s)
	}
}

func TestSetLeavesRoomForTheSessionObject(t *testing.T) {
	clock := &testClock{t: testEpoch}
	manager := newTestManager(t, DefaultConfig(), clock)
	s := NewSession()
	deep := strings.Repeat("[", MaxNestingDepth) + strings.Repeat("]", MaxNestingDepth)
	if err := s.Set("deep", json.RawMessage(deep)); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("a value that would make the session too deep to reopen: err = %v", err)
	}
	ok := strings.Repeat("[", MaxNestingDepth-1) + strings.Repeat("]", MaxNestingDepth-1)
	if err := s.Set("deep", json.RawMessage(ok)); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if _, err := manager.Save(context.Background(), s, h); err != nil {
		t.Fatal(err)
	}
	if reopened, outcome := manager.Open(requestWithCookie("session", cookieValue(t, h, "session"))); outcome != OutcomeValid || reopened.Len() != 1 {
		t.Errorf("reopened: %s %s", outcome, reopened)
	}
}

func TestKeysThatAreNotUnicodeAreRefused(t *testing.T) {
	var m Mutation
	if err := m.SetReplace([]byte(`{"\ud800":1,"\udc00":2}`)); !errors.Is(err, ErrBadKey) {
		t.Errorf("lone surrogate keys: err = %v", err)
	}
}

func TestKeysEscapeLikePython(t *testing.T) {
	s := NewSession()
	_ = s.Set("a\bb\fc\x01", json.RawMessage(`1`))
	if got, want := s.String(), `{"a\bb\fc\u0001":1}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestHeaderProtocolHardening(t *testing.T) {
	p, _ := newHeaderProtocol("X-Session")
	if !p.Owns("X.Session") || !p.Owns("x.session_update") {
		t.Error("dots fold like underscores (PHP turns both into _)")
	}
	for _, prefix := range []string{"X", "X-", "Xs", "X-Session-"} {
		if _, err := newHeaderProtocol(prefix); err == nil {
			t.Errorf("over-broad prefix %q accepted", prefix)
		}
	}

	h := http.Header{
		"Connection": {"keep-alive, X-Session", "x_session_user"},
		"Trailer":    {"X-Session, Checksum"},
	}
	p.WriteRequest(h, NewSession())
	if got := h.Values("Connection"); strings.Join(got, "|") != "keep-alive" {
		t.Errorf("Connection = %q", got)
	}
	if got := h.Values("Trailer"); strings.Join(got, "|") != "Checksum" {
		t.Errorf("Trailer = %q", got)
	}
	if h.Get("X-Session") != "{}" {
		t.Errorf("X-Session = %q", h.Get("X-Session"))
	}
	h = http.Header{"Connection": {"X-Session"}}
	p.WriteRequest(h, NewSession())
	if _, ok := h["Connection"]; ok {
		t.Errorf("an emptied Connection header must go: %q", h["Connection"])
	}
}

func TestAddVaryCookieSkipsEmptyLines(t *testing.T) {
	h := http.Header{"Vary": {"Accept-Encoding", ""}}
	AddVaryCookie(h)
	if got := strings.Join(h["Vary"], "|"); got != "Accept-Encoding, Cookie|" {
		t.Errorf("Vary = %q", h["Vary"])
	}
}

func TestNewManagerRequiresAnAbsolutePath(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CookiePath = "app"
	if _, err := NewManager(cfg, nil); err == nil {
		t.Error("relative cookie path accepted")
	}
}

// What a key holder could seal that is not one valid, compact object never
// opens as a session.
func TestCheckNormalizedObjectRefusesMalformedObjects(t *testing.T) {
	for _, bad := range []string{`{"a":1,}`, `{,}`, `{"a"}`, `{"a":1 }`, `{"a":1}}`, `{"a":}`, `["a"]`, `{"a":"\u0001` + "\x01" + `"}`} {
		if _, err := checkNormalizedObject([]byte(bad)); err == nil {
			t.Errorf("%s passed the check", bad)
		}
	}
	for _, good := range []string{`{}`, `{"a":1}`, `{"a":[1,{"b":"}"}],"c":null}`} {
		if _, err := checkNormalizedObject([]byte(good)); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
}
