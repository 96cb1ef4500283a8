package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/caddy-session/sessioncore"
)

// The user index: per user, one hash under <prefix>user:<user>, a field per
// session ID holding its metadata as JSON. It expires with the longest
// lived of its sessions; entries of sessions that expired, were renewed or
// revoked meanwhile are dropped when the user's sessions are listed.

type indexEntry struct {
	Created  time.Time `json:"c"`
	LastSeen time.Time `json:"l"`
	Device   string    `json:"d,omitempty"`
	ClientIP string    `json:"i,omitempty"`
}

func (s *Store) userKey(user string) string { return s.prefix + "user:" + user }

// index files the session id under its owner, after a commit kept it.
func (s *Store) index(ctx context.Context, id string, o *sessioncore.Owner, ttl time.Duration) error {
	entry, _ := json.Marshal(indexEntry{Created: o.Created, LastSeen: time.Now(), Device: o.Device, ClientIP: o.ClientIP})
	key := s.userKey(o.User)
	pipe := s.client.TxPipeline()
	pipe.HSet(ctx, key, id, entry)
	pipe.PExpire(ctx, key, ttl) // the newest session lives longest
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("%w: indexing a session: %w", sessioncore.ErrStore, err)
	}
	return nil
}

// Sessions implements sessioncore.UserIndex.
func (s *Store) Sessions(ctx context.Context, user string) ([]sessioncore.SessionInfo, error) {
	key := s.userKey(user)
	fields, err := s.client.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: listing a user's sessions: %w", sessioncore.ErrStore, err)
	}
	ids := make([]string, 0, len(fields))
	pipe := s.client.Pipeline()
	exists := make([]*redis.IntCmd, 0, len(fields))
	for id := range fields {
		ids = append(ids, id)
		exists = append(exists, pipe.Exists(ctx, s.key(id)))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("%w: listing a user's sessions: %w", sessioncore.ErrStore, err)
		}
	}
	var infos []sessioncore.SessionInfo
	var gone []string
	for i, id := range ids {
		var e indexEntry
		if exists[i].Val() == 0 || json.Unmarshal([]byte(fields[id]), &e) != nil {
			gone = append(gone, id)
			continue
		}
		infos = append(infos, sessioncore.SessionInfo{
			ID: id, IDHash: sessioncore.HashID(id), Created: e.Created, LastSeen: e.LastSeen, Device: e.Device, ClientIP: e.ClientIP,
		})
	}
	if len(gone) > 0 {
		_ = s.client.HDel(ctx, key, gone...).Err() // cleaning only; the answer is right without it
	}
	slices.SortFunc(infos, func(a, b sessioncore.SessionInfo) int { return a.Created.Compare(b.Created) })
	return infos, nil
}

var _ sessioncore.UserIndex = (*Store)(nil)
