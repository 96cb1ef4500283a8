package caddymodule

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
)

// newRedisClient makes go-redis's universal client for c. Timeouts are
// short: a Redis that does not answer must not hold requests for long, and
// the client reconnects by itself when Redis is back.
func newRedisClient(c *StoreConfig) (redis.UniversalClient, error) {
	addresses := c.Addresses
	if len(addresses) == 0 {
		addresses = []string{defaultRedisURL}
	}
	opts := &redis.UniversalOptions{
		Username:     c.Username,
		Password:     c.Password,
		MasterName:   c.MasterName,
		DB:           c.DB,
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		MaxRetries:   1,
	}
	useTLS := c.TLS
	for _, a := range addresses {
		if !strings.Contains(a, "://") {
			opts.Addrs = append(opts.Addrs, a)
			continue
		}
		u, err := redis.ParseURL(a)
		if err != nil {
			// The parser's error quotes the whole URL, password included.
			return nil, fmt.Errorf("redis address %s is not a valid redis:// or rediss:// URL", redactURL(a))
		}
		opts.Addrs = append(opts.Addrs, u.Addr)
		if u.TLSConfig != nil {
			useTLS = true
		}
		if opts.Username == "" {
			opts.Username = u.Username
		}
		if opts.Password == "" {
			opts.Password = u.Password
		}
		if len(addresses) == 1 && c.DB == 0 {
			opts.DB = u.DB
		}
	}
	if useTLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return redis.NewUniversalClient(opts), nil
}

// redactURL drops the password from an address for an error message.
func redactURL(a string) string {
	u, err := url.Parse(a)
	if err != nil {
		return "(unparsable address)"
	}
	return u.Redacted()
}

// redisLogger sends go-redis's own messages (failed dials while Redis is
// down, for instance) to Caddy's log, as structured warnings.
type redisLogger struct{}

func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	caddy.Log().Named("http.handlers.session.redis").Warn(fmt.Sprintf(format, v...))
}

func init() {
	redis.SetLogger(redisLogger{})
}
