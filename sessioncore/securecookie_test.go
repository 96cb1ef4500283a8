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
		if got, err := openEnvelope(sealed); err != nil || string(got.JSON) != json || !got.Issued.Equal(issued) || !got.Created.Equal(p.Created) {
			t.Errorf("gorilla read %+v, %v", got, err)
		}
		if err := gorilla.Decode("other", ours, &sealed); err == nil {
			t.Error("gorilla opened our cookie under another name")
		}

		// Gorilla's, opened by ours.
		envelope := append([]byte{envelopeVersion, 0, 0, 0, 0, 0x6b, 0x49, 0xd2, 0x00, 0, 0, 0, 0, 0x6b, 0x49, 0xd2, 0x00}, json...)
		theirs, err := gorilla.Encode("session", envelope)
		if err != nil {
			t.Fatal(err)
		}
		got, keyIndex, err := codec.Decode("session", theirs)
		if err != nil || keyIndex != 0 || string(got.JSON) != json || got.Issued.Unix() != 1_800_000_000 {
			t.Errorf("we read gorilla's cookie as %+v, %d, %v", got, keyIndex, err)
		}
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
