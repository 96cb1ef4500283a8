package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// Revocations is a per-user revocation map in Redis, shared by every
// gateway that uses the same Redis and key prefix (see
// sessioncore.Revocations). Each revoked user is one key holding the
// cutoff in Unix milliseconds (Lua compares numbers as doubles), expiring with it.
type Revocations struct {
	client redis.UniversalClient
	prefix string
}

// NewRevocations returns the map of client under keys that start with
// prefix.
func NewRevocations(client redis.UniversalClient, prefix string) *Revocations {
	return &Revocations{client: client, prefix: prefix}
}

// Cutoff implements sessioncore.Revocations.
func (r *Revocations) Cutoff(ctx context.Context, user string) (time.Time, error) {
	v, err := r.client.Get(ctx, r.prefix+user).Result()
	switch {
	case err == redis.Nil:
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("%w: %w", sessioncore.ErrStore, err)
	}
	millis, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: the revocation of a user is not a time", sessioncore.ErrUndecodable)
	}
	return time.UnixMilli(millis), nil
}

// revokeScript keeps the later of the stored cutoff and ARGV[1], and the
// later of the key's expiry and ARGV[2] milliseconds from now: a handler
// with a short lifetime never shortens what a longer one set.
var revokeScript = redis.NewScript(`
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
local new = tonumber(ARGV[1])
if new > old then redis.call('SET', KEYS[1], ARGV[1]) end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`)

// Revoke implements sessioncore.Revocations.
func (r *Revocations) Revoke(ctx context.Context, user string, cutoff time.Time, ttl time.Duration) error {
	if err := revokeScript.Run(ctx, r.client, []string{r.prefix + user}, cutoff.UnixMilli(), ttl.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("%w: %w", sessioncore.ErrStore, err)
	}
	return nil
}

var _ sessioncore.Revocations = (*Revocations)(nil)
