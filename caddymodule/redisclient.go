package caddymodule

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// newRedisClient makes go-redis's universal client for c: a plain client
// for one address, a failover client when MasterName names a sentinel
// master, a cluster client for several addresses or when Cluster is set.
// Timeouts are short: a Redis that does not answer must not hold requests
// for long, and the client reconnects by itself when Redis is back.
func newRedisClient(c *StoreConfig) (redis.UniversalClient, error) {
	opts, err := redisOptions(c)
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(opts), nil
}

// redisOptions maps the store's configuration, its placeholders resolved
// (resolveStoreConfig), to go-redis's options. It reads the TLS files, so
// that a missing or bad file fails when the config loads (caddy validate
// included). No error quotes a secret or a file's content.
func redisOptions(c *StoreConfig) (*redis.UniversalOptions, error) {
	resolve := func(_, v string) (string, error) { return v, nil }
	sentinelUsername, err := resolve("sentinel_username", c.SentinelUsername)
	if err != nil {
		return nil, err
	}
	sentinelPassword, err := resolve("sentinel_password", c.SentinelPassword)
	if err != nil {
		return nil, err
	}
	if c.Cluster && c.MasterName != "" {
		return nil, errors.New("store: cluster and master_name exclude each other (a Redis Cluster fails over by itself, without sentinels)")
	}
	if (sentinelUsername != "" || sentinelPassword != "") && c.MasterName == "" {
		return nil, errors.New("store: sentinel_username and sentinel_password need master_name")
	}
	if c.Cluster && c.DB != 0 {
		return nil, errors.New("store: a Redis Cluster has only database 0; remove db")
	}

	addresses := c.Addresses
	if len(addresses) == 0 {
		addresses = []string{defaultRedisURL}
	}
	opts := &redis.UniversalOptions{
		Username:         c.Username,
		Password:         c.Password,
		SentinelUsername: sentinelUsername,
		SentinelPassword: sentinelPassword,
		MasterName:       c.MasterName,
		IsClusterMode:    c.Cluster,
		DB:               c.DB,
		DialTimeout:      time.Second,
		ReadTimeout:      time.Second,
		WriteTimeout:     time.Second,
		MaxRetries:       1,
	}
	useTLS := c.TLS || c.TLSCA != "" || c.TLSCert != "" || c.TLSKey != "" || c.TLSServerName != ""
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
		if c.Cluster && u.DB != 0 {
			return nil, fmt.Errorf("redis address %s names database %d, but a Redis Cluster has only database 0", redactURL(a), u.DB)
		}
		if len(addresses) == 1 && c.DB == 0 {
			opts.DB = u.DB
		}
	}
	if useTLS {
		if opts.TLSConfig, err = redisTLSConfig(c, resolve); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// redisTLSConfig reads the TLS files of c. With no CA the system's roots
// verify the server; with no server name, the host of each address (as
// crypto/tls infers it from the address dialed).
func redisTLSConfig(c *StoreConfig, resolve func(option, v string) (string, error)) (*tls.Config, error) {
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	var err error
	if config.ServerName, err = resolve("tls_server_name", c.TLSServerName); err != nil {
		return nil, err
	}
	ca, err := resolve("tls_ca", c.TLSCA)
	if err != nil {
		return nil, err
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("store tls_ca: %w", fileError(err))
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store tls_ca: %s holds no PEM certificate", ca)
		}
	}
	cert, err := resolve("tls_cert", c.TLSCert)
	if err != nil {
		return nil, err
	}
	key, err := resolve("tls_key", c.TLSKey)
	if err != nil {
		return nil, err
	}
	switch {
	case cert == "" && key == "":
	case cert == "" || key == "":
		return nil, errors.New("store: tls_cert and tls_key go together (the client certificate and its private key)")
	default:
		certPEM, err := os.ReadFile(cert)
		if err != nil {
			return nil, fmt.Errorf("store tls_cert: %w", fileError(err))
		}
		keyPEM, err := os.ReadFile(key)
		if err != nil {
			return nil, fmt.Errorf("store tls_key: %w", fileError(err))
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// crypto/tls's errors describe the PEM blocks, never quote them.
			return nil, fmt.Errorf("store tls_cert %s and tls_key %s: not a certificate and its private key: %v", cert, key, err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

// fileError keeps an os error's operation, file name and reason.
func fileError(err error) error {
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return fmt.Errorf("cannot read %s: %v", pathErr.Path, pathErr.Err)
	}
	return err
}

// redactURL drops the password from an address for an error message.
func redactURL(a string) string {
	if !strings.Contains(a, "://") {
		// host:port; a stray user:pass@ before it is dropped too.
		if i := strings.LastIndexByte(a, '@'); i >= 0 {
			return a[i+1:]
		}
		return a
	}
	u, err := url.Parse(a)
	if err != nil {
		return "(unparsable address)"
	}
	return u.Redacted()
}

// warnLiteralAddressPasswords logs, as openStore does for a literal
// password, when an address of the raw (unresolved) configuration carries
// a password written in the config itself rather than from a placeholder.
func warnLiteralAddressPasswords(log *zap.Logger, raw []string) {
	for _, a := range raw {
		if addressHasLiteralPassword(a) {
			log.Warn("a store address carries a password written in the config itself, where the admin API and autosave.json show it; use {env.*} or {file.*}",
				zap.String("address", redactURL(a)))
			return
		}
	}
}

// addressHasLiteralPassword reports whether the raw address a has a
// userinfo password that is not (or not entirely) a placeholder.
func addressHasLiteralPassword(a string) bool {
	_, rest, ok := strings.Cut(a, "://")
	if !ok {
		return false
	}
	// The authority ends at the first / after the last @ of the userinfo;
	// a placeholder such as {file./run/pw} may hold slashes itself, so cut
	// at the last @ first.
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return false
	}
	userinfo := rest[:at]
	_, password, ok := strings.Cut(userinfo, ":")
	if !ok || password == "" {
		return false
	}
	return !isPlaceholder(password)
}

// isPlaceholder reports whether s is exactly one {placeholder}.
func isPlaceholder(s string) bool {
	return len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}' && !strings.ContainsAny(s[1:len(s)-1], "{}")
}

// describeStore turns a key of the stores pool into a description for the
// admin API: the store type and where it is, without any secret. The key is
// the store's JSON configuration with the secrets resolved, so it is never
// shown as such.
func describeStore(key string) string {
	if rest, ok := strings.CutPrefix(key, storeMemory+"/"); ok {
		cookie, _, _ := strings.Cut(rest, "/")
		return "memory (cookie " + cookie + ")"
	}
	var c StoreConfig
	if err := json.Unmarshal([]byte(key), &c); err != nil || c.Type == "" {
		return "(unknown store)"
	}
	addresses := c.Addresses
	if len(addresses) == 0 {
		addresses = []string{defaultRedisURL}
	}
	var redacted []string
	for _, a := range addresses {
		redacted = append(redacted, redactURL(a))
	}
	var b strings.Builder
	b.WriteString(c.Type)
	switch {
	case c.Cluster || len(addresses) > 1 && c.MasterName == "":
		b.WriteString(" cluster")
	case c.MasterName != "":
		b.WriteString(" sentinel master " + c.MasterName + " via")
	}
	b.WriteString(" " + strings.Join(redacted, " "))
	prefix := c.KeyPrefix
	if prefix == "" {
		prefix = defaultKeyPrefix
	}
	b.WriteString(" prefix " + prefix)
	return b.String()
}

// parseRedisTLS parses the store's tls subdirective: "tls true|false",
// a bare "tls", or a block that implies true:
//
//	tls {
//		ca          <file>
//		cert        <file>
//		key         <file>
//		server_name <name>
//	}
func parseRedisTLS(d *caddyfile.Dispenser, c *StoreConfig) error {
	args := d.RemainingArgs()
	c.TLS = true
	switch len(args) {
	case 0:
	case 1:
		b, err := strconv.ParseBool(args[0])
		if err != nil {
			return d.Errf("tls must be true or false, or a block, not %q", args[0])
		}
		c.TLS = b
	default:
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if !c.TLS {
			return d.Err("tls false cannot have a block of TLS options")
		}
		sub := d.Val()
		if seen[sub] {
			return d.Errf("tls %s specified more than once", sub)
		}
		seen[sub] = true
		var field *string
		switch sub {
		case "ca":
			field = &c.TLSCA
		case "cert":
			field = &c.TLSCert
		case "key":
			field = &c.TLSKey
		case "server_name":
			field = &c.TLSServerName
		default:
			return d.Errf("unrecognized tls option %q; want ca, cert, key or server_name", sub)
		}
		args := d.RemainingArgs()
		if len(args) != 1 {
			return d.ArgErr()
		}
		*field = args[0]
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return d.Err("tls: cert and key go together (the client certificate and its private key)")
	}
	return nil
}

// flagArg returns the argument of a subdirective that is true when written
// alone, or takes true|false.
func flagArg(d *caddyfile.Dispenser) (bool, error) {
	sub := d.Val()
	args := d.RemainingArgs()
	switch len(args) {
	case 0:
		return true, nil
	case 1:
		b, err := strconv.ParseBool(args[0])
		if err != nil {
			return false, d.Errf("%s must be true or false, not %q", sub, args[0])
		}
		return b, nil
	}
	return false, d.ArgErr()
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
