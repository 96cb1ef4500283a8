package sessioncore

import (
	"bytes"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
)

// gorillaFor returns gorilla/securecookie itself, configured with the keys
// SecureCookieCodec derives from secret.
func gorillaFor(t *testing.T, secret []byte) *securecookie.SecureCookie {
	t.Helper()
	hashKey, blockKey, err := derivedKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	return securecookie.New(hashKey, blockKey).SetSerializer(securecookie.NopEncoder{}).MaxAge(0).MaxLength(0)
}

func TestSecureCookieFormatIsGorillas(t *testing.T) {
	codec, err := NewSecureCookieCodec(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	gorilla := gorillaFor(t, testSecret)
	issued := time.Unix(1_800_000_000, 0)
	for _, json := range []string{`{}`, `{"user":"alice"}`, `{"pad":"` + string(bytes.Repeat([]byte("x|"), 700)) + `"}`} {
		p := Payload{JSON: []byte(json), Issued: issued, Created: issued.Add(-time.Hour)}

		// Ours, opened by gorilla.
		ours, err := codec.Encode("session", p)
		if err != nil {
			t.Fatal(err)
		}
		var sealed []byte
		if err := gorilla.Decode("session", ours, &sealed); err != nil {
			t.Fatalf("gorilla cannot open our cookie: %v", err)
		}
		if got, err := openEnvelope(sealed, issued); err != nil || string(got.JSON) != json || !got.Created.Equal(p.Created) {
			t.Errorf("gorilla read %+v, %v", got, err)
		}
		if err := gorilla.Decode("other", ours, &sealed); err == nil {
			t.Error("gorilla opened our cookie under another name")
		}

		// Gorilla's, opened by ours: its timestamp is the issue time.
		envelope := append([]byte{envelopeV2, 0, 0, 0, 0, 0x6b, 0x49, 0xd2, 0x00}, json...)
		before := time.Now().Unix()
		theirs, err := gorilla.Encode("session", envelope)
		if err != nil {
			t.Fatal(err)
		}
		got, keyIndex, err := codec.Decode("session", theirs)
		if err != nil || keyIndex != 0 || string(got.JSON) != json || got.Issued.Unix() < before || got.Created.Unix() != 1_800_000_000 {
			t.Errorf("we read gorilla's cookie as %+v, %d, %v", got, keyIndex, err)
		}
	}
}

// A version 1 envelope, written before the issue time moved to
// securecookie's timestamp, still opens, with the issue time it holds.
func TestSecureCookieReadsVersion1Envelopes(t *testing.T) {
	codec, _ := NewSecureCookieCodec(testSecret)
	gorilla := gorillaFor(t, testSecret)
	envelope := append([]byte{envelopeV1, 0, 0, 0, 0, 0x6b, 0x49, 0xd2, 0x00, 0, 0, 0, 0, 0x6b, 0x49, 0xd1, 0x00}, `{"user":"alice"}`...)
	value, err := gorilla.Encode("session", envelope)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := codec.Decode("session", value)
	if err != nil || string(got.JSON) != `{"user":"alice"}` || got.Issued.Unix() != 1_800_000_000 || got.Created.Unix() != 1_800_000_000-256 {
		t.Errorf("read %+v, %v", got, err)
	}
	if got.Sealed != nil {
		t.Error("a version 1 value would be reissued with its old issue time inside")
	}
}

// Reissuing an unchanged session signs a new timestamp over the same
// ciphertext; the value still opens, as gorilla's and as ours.
func TestSecureCookieReissuesSealedValue(t *testing.T) {
	codec, _ := NewSecureCookieCodec(testSecret, testOldSecret)
	issued := time.Unix(1_800_000_000, 0)
	first, _ := codec.Encode("session", Payload{JSON: []byte(`{"user":"alice"}`), Issued: issued, Created: issued})
	opened, keyIndex, err := codec.Decode("session", first)
	if err != nil || keyIndex != 0 || opened.Sealed == nil {
		t.Fatalf("opened %+v, %d, %v", opened, keyIndex, err)
	}
	later := issued.Add(time.Hour)
	second, err := codec.Encode("session", Payload{Issued: later, Created: opened.Created, Sealed: opened.Sealed})
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("the reissued value did not change")
	}
	got, _, err := codec.Decode("session", second)
	if err != nil || string(got.JSON) != `{"user":"alice"}` || !got.Issued.Equal(later) || !got.Created.Equal(issued) {
		t.Errorf("reissued value opened as %+v, %v", got, err)
	}
	if string(got.Sealed) != string(opened.Sealed) {
		t.Error("the ciphertext was sealed again")
	}
	var sealed []byte
	if err := gorillaFor(t, testSecret).Decode("session", second, &sealed); err != nil {
		t.Errorf("gorilla cannot open the reissued value: %v", err)
	}

	// Under a fallback key the value must be sealed again under the
	// current one: no Sealed is offered.
	oldCodec, _ := NewSecureCookieCodec(testOldSecret)
	byOld, _ := oldCodec.Encode("session", Payload{JSON: []byte(`{"user":"bob"}`), Issued: issued, Created: issued})
	if got, keyIndex, err := codec.Decode("session", byOld); err != nil || keyIndex != 1 || got.Sealed != nil {
		t.Errorf("fallback value: %+v, %d, %v", got, keyIndex, err)
	}
}

func TestSecureCookieIsEncryptedAndRandomized(t *testing.T) {
	codec, _ := NewSecureCookieCodec(testSecret)
	p := Payload{JSON: []byte(`{"user":"alice-in-clear"}`), Issued: time.Now()}
	a, _ := codec.Encode("session", p)
	b, _ := codec.Encode("session", p)
	if a == b {
		t.Error("two encodings are equal: the IV is not random")
	}
	for _, v := range []string{a, b} {
		raw, _ := scBase64.DecodeString(v)
		if bytes.Contains(raw, []byte("alice")) {
			t.Error("the session is readable in the cookie")
		}
	}
}
