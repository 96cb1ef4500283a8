package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// fakeStore answers Delete as told; the rest of the interface is unused.
type fakeStore struct {
	sessioncore.Store
	found bool
	err   error
}

func (f fakeStore) Delete(context.Context, string) (bool, error) { return f.found, f.err }

// TestAdminRevokeAnswersPerStore checks the admin API's answer and status
// with stores that have the session, lack it, or fail.
func TestAdminRevokeAnswersPerStore(t *testing.T) {
	pool := func(t *testing.T, keys map[string]fakeStore) {
		for key, store := range keys {
			if _, loaded, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) { return pooledStore{Store: store}, nil }); err != nil || loaded {
				t.Fatalf("pool %s: loaded %v, %v", key, loaded, err)
			}
			t.Cleanup(func() { _, _ = stores.Delete(key) })
		}
	}
	down := errors.New("session store: dial tcp 10.0.0.6:6379: connect: connection refused")
	redisKey := func(addr, password string) string {
		b, _ := json.Marshal(StoreConfig{Type: storeRedis, Addresses: []string{"redis://gw:" + password + "@" + addr}})
		return string(b)
	}
	id := strings.Repeat("A", 43) // a valid ID: 32 bytes in base64url
	revoke := func(t *testing.T) (int, map[string]any) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/session/revoke", strings.NewReader(`{"id":"`+id+`"}`))
		if err := (&Admin{}).revoke(w, r); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(w.Body.String(), "hunter2") {
			t.Errorf("the answer reveals a password: %s", w.Body)
		}
		var answer map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
			t.Fatalf("%s: %v", w.Body, err)
		}
		return w.Code, answer
	}
	var leftovers []string
	stores.Range(func(key, _ any) bool {
		leftovers = append(leftovers, describeStore(key.(string)))
		return true
	})
	if len(leftovers) != 0 {
		t.Fatalf("the pool holds stores of other tests: %q", leftovers)
	}

	t.Run("one store down, one has it", func(t *testing.T) {
		pool(t, map[string]fakeStore{
			redisKey("10.0.0.5:6379", "hunter2"): {found: true},
			redisKey("10.0.0.6:6379", "hunter2"): {err: down},
			"memory/revoke-test":                 {found: false},
		})
		code, answer := revoke(t)
		if code != http.StatusOK || answer["revoked"] != 1.0 || answer["error"] != nil {
			t.Fatalf("%d %v", code, answer)
		}
		got, _ := json.Marshal(answer["stores"])
		want := `[{"revoked":false,"store":"memory (cookie revoke-test)"},` +
			`{"revoked":true,"store":"redis redis://gw:xxxxx@10.0.0.5:6379 prefix session:"},` +
			`{"error":"session store: dial tcp 10.0.0.6:6379: connect: connection refused","revoked":false,"store":"redis redis://gw:xxxxx@10.0.0.6:6379 prefix session:"}]`
		if string(got) != want {
			t.Errorf("stores\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("every store down", func(t *testing.T) {
		pool(t, map[string]fakeStore{
			redisKey("10.0.0.5:6379", "hunter2"): {err: down},
			redisKey("10.0.0.6:6379", "hunter2"): {err: down},
		})
		code, answer := revoke(t)
		if code != http.StatusServiceUnavailable || answer["revoked"] != 0.0 || answer["error"] == nil || len(answer["stores"].([]any)) != 2 {
			t.Fatalf("%d %v", code, answer)
		}
	})
	t.Run("no store", func(t *testing.T) {
		code, answer := revoke(t)
		if code != http.StatusOK || answer["revoked"] != 0.0 || len(answer["stores"].([]any)) != 0 {
			t.Fatalf("%d %v", code, answer)
		}
	})
}
