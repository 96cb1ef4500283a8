package caddymodule

import (
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sessiongate/caddy-session/internal/redistest"
)

// TestRedisOptions maps store configurations to go-redis's options.
func TestRedisOptions(t *testing.T) {
	certs := redistest.NewCertificates(t)
	t.Setenv("REDIS_TEST_SENTINEL_PW", "from-the-env")
	type want struct {
		addrs                          []string
		username, password             string
		sentinelUsername, sentinelPass string
		masterName                     string
		db                             int
		cluster                        bool
		tls                            bool
		client                         string // the client type NewUniversalClient makes
	}
	tests := []struct {
		name string
		c    StoreConfig
		want want
	}{
		{"default", StoreConfig{}, want{addrs: []string{"127.0.0.1:6379"}, client: "*redis.Client"}},
		{"one URL with credentials and a database",
			StoreConfig{Addresses: []string{"redis://gw:pw@10.0.0.5:6380/3"}},
			want{addrs: []string{"10.0.0.5:6380"}, username: "gw", password: "pw", db: 3, client: "*redis.Client"}},
		{"explicit credentials win over the URL's",
			StoreConfig{Addresses: []string{"redis://gw:pw@10.0.0.5:6380"}, Username: "u", Password: "p"},
			want{addrs: []string{"10.0.0.5:6380"}, username: "u", password: "p", client: "*redis.Client"}},
		{"host:port", StoreConfig{Addresses: []string{"10.0.0.5:6380"}, DB: 2},
			want{addrs: []string{"10.0.0.5:6380"}, db: 2, client: "*redis.Client"}},
		{"cluster from one seed",
			StoreConfig{Addresses: []string{"redis://config.example:6379"}, Cluster: true},
			want{addrs: []string{"config.example:6379"}, cluster: true, client: "*redis.ClusterClient"}},
		{"several addresses are a cluster",
			StoreConfig{Addresses: []string{"10.0.0.5:6379", "10.0.0.6:6379"}},
			want{addrs: []string{"10.0.0.5:6379", "10.0.0.6:6379"}, client: "*redis.ClusterClient"}},
		{"sentinels with their own credentials",
			StoreConfig{Addresses: []string{"10.0.0.5:26379", "10.0.0.6:26379"}, MasterName: "mymaster",
				Password: "master-pw", SentinelUsername: "watcher", SentinelPassword: "{env.REDIS_TEST_SENTINEL_PW}"},
			want{addrs: []string{"10.0.0.5:26379", "10.0.0.6:26379"}, masterName: "mymaster", password: "master-pw",
				sentinelUsername: "watcher", sentinelPass: "from-the-env", client: "*redis.Client"}},
		{"rediss:// is TLS", StoreConfig{Addresses: []string{"rediss://10.0.0.5:6380"}},
			want{addrs: []string{"10.0.0.5:6380"}, tls: true, client: "*redis.Client"}},
		{"tls true", StoreConfig{Addresses: []string{"10.0.0.5:6380"}, TLS: true},
			want{addrs: []string{"10.0.0.5:6380"}, tls: true, client: "*redis.Client"}},
		{"TLS files imply TLS",
			StoreConfig{Addresses: []string{"10.0.0.5:6380"}, TLSCA: certs.CA, TLSCert: certs.ClientCert, TLSKey: certs.ClientKey, TLSServerName: "redis.internal"},
			want{addrs: []string{"10.0.0.5:6380"}, tls: true, client: "*redis.Client"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := resolvedRedisOptions(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			got := want{addrs: opts.Addrs, username: opts.Username, password: opts.Password,
				sentinelUsername: opts.SentinelUsername, sentinelPass: opts.SentinelPassword,
				masterName: opts.MasterName, db: opts.DB, cluster: opts.IsClusterMode, tls: opts.TLSConfig != nil}
			client := redis.NewUniversalClient(opts)
			got.client = reflect.TypeOf(client).String()
			client.Close()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if opts.DialTimeout <= 0 || opts.ReadTimeout <= 0 || opts.MaxRetries != 1 {
				t.Errorf("timeouts %s %s, retries %d", opts.DialTimeout, opts.ReadTimeout, opts.MaxRetries)
			}
			if opts.TLSConfig != nil && opts.TLSConfig.MinVersion < tls.VersionTLS12 {
				t.Errorf("TLS minimum version %x", opts.TLSConfig.MinVersion)
			}
		})
	}

	t.Run("TLS files", func(t *testing.T) {
		opts, err := redisOptions(&StoreConfig{TLSCA: certs.CA, TLSCert: certs.ClientCert, TLSKey: certs.ClientKey, TLSServerName: "redis.internal"})
		if err != nil {
			t.Fatal(err)
		}
		c := opts.TLSConfig
		if c.RootCAs == nil || len(c.Certificates) != 1 || c.ServerName != "redis.internal" || c.InsecureSkipVerify {
			t.Errorf("tls.Config: roots %v, %d certificates, server name %q", c.RootCAs != nil, len(c.Certificates), c.ServerName)
		}
		opts, err = redisOptions(&StoreConfig{TLS: true})
		if err != nil {
			t.Fatal(err)
		}
		if c := opts.TLSConfig; c.RootCAs != nil || len(c.Certificates) != 0 || c.ServerName != "" {
			t.Error("tls true alone should verify with the system's roots, the host of the address, and no client certificate")
		}
	})
}

func TestRedisOptionsRefusals(t *testing.T) {
	certs := redistest.NewCertificates(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("TOPSECRETCONTENT not a PEM file"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name    string
		c       StoreConfig
		want    []string
		neither []string
	}{
		{"cluster and sentinels", StoreConfig{Cluster: true, MasterName: "m"}, []string{"cluster and master_name"}, nil},
		{"sentinel credentials without sentinels", StoreConfig{SentinelPassword: "pw"}, []string{"need master_name"}, nil},
		{"cluster with a database", StoreConfig{Cluster: true, DB: 2}, []string{"only database 0"}, nil},
		{"cluster with a database in the URL", StoreConfig{Cluster: true, Addresses: []string{"redis://u:hunter2@h:6379/2"}},
			[]string{"only database 0", "redis://u:xxxxx@h:6379/2"}, []string{"hunter2"}},
		{"bad URL", StoreConfig{Addresses: []string{"redis://u:hunter2@h:port/x"}}, []string{"not a valid redis://"}, []string{"hunter2"}},
		{"unknown placeholder in the sentinel password", StoreConfig{MasterName: "m", SentinelPassword: "{nope.hunter2}"},
			[]string{"sentinel_password: it contains an unrecognized placeholder"}, []string{"hunter2"}},
		{"missing CA", StoreConfig{TLSCA: missing}, []string{"tls_ca", missing, "no such file"}, nil},
		{"CA that is not PEM", StoreConfig{TLSCA: garbage}, []string{"tls_ca", garbage, "no PEM certificate"}, []string{"TOPSECRET"}},
		{"certificate without key", StoreConfig{TLSCert: certs.ClientCert}, []string{"tls_cert and tls_key go together"}, nil},
		{"missing key", StoreConfig{TLSCert: certs.ClientCert, TLSKey: missing}, []string{"tls_key", missing}, nil},
		{"key that is not PEM", StoreConfig{TLSCert: certs.ClientCert, TLSKey: garbage}, []string{"tls_key " + garbage}, []string{"TOPSECRET"}},
		{"key of another certificate", StoreConfig{TLSCert: certs.ClientCert, TLSKey: certs.ServerKey}, []string{"tls_key " + certs.ServerKey, "private key does not match"}, []string{"PRIVATE KEY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolvedRedisOptions(tt.c)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, n := range tt.neither {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q reveals %q", err, n)
				}
			}
		})
	}
}

func TestAddressPasswordWarning(t *testing.T) {
	tests := []struct {
		address string
		warn    bool
	}{
		{"redis://gw:hunter2@10.0.0.5:6379/0", true},
		{"rediss://:hunter2@10.0.0.5:6379", true},
		{"redis://gw:{env.REDIS_PASSWORD}@10.0.0.5:6379", false},
		{"redis://gw:{file./run/secrets/redis}@10.0.0.5:6379", false},
		{"redis://gw:{env.A}{env.B}@10.0.0.5:6379", true}, // not one placeholder: be safe
		{"redis://gw:x{env.REDIS_PASSWORD}@10.0.0.5:6379", true},
		{"redis://gw@10.0.0.5:6379", false},
		{"redis://10.0.0.5:6379", false},
		{"10.0.0.5:6379", false},
		{"{env.REDIS_URL}", false},
	}
	for _, tt := range tests {
		core, logs := observer.New(zapcore.WarnLevel)
		warnLiteralAddressPasswords(zap.New(core), []string{"redis://10.0.0.9:6379", tt.address})
		if got := logs.Len() == 1; got != tt.warn {
			t.Errorf("%s: warned %v, want %v", tt.address, got, tt.warn)
		}
		for _, e := range logs.All() {
			if !strings.Contains(e.Message, "use {env.*} or {file.*}") {
				t.Errorf("warning %q", e.Message)
			}
			if strings.Contains(e.Message+e.ContextMap()["address"].(string), "hunter2") {
				t.Errorf("the warning reveals the password: %v", e.ContextMap())
			}
		}
	}
}

func TestDescribeStore(t *testing.T) {
	key := func(c StoreConfig) string {
		b, _ := json.Marshal(c)
		return string(b)
	}
	tests := []struct{ key, want string }{
		{key(StoreConfig{Type: storeRedis}), "redis redis://127.0.0.1:6379/0 prefix session:"},
		{key(StoreConfig{Type: storeRedis, Addresses: []string{"redis://gw:hunter2@10.0.0.5:6379/2"}, Password: "hunter2", KeyPrefix: "app:"}),
			"redis redis://gw:xxxxx@10.0.0.5:6379/2 prefix app:"},
		{key(StoreConfig{Type: storeRedis, Addresses: []string{"10.0.0.5:6379"}, Cluster: true}), "redis cluster 10.0.0.5:6379 prefix session:"},
		{key(StoreConfig{Type: storeRedis, Addresses: []string{"10.0.0.5:26379", "10.0.0.6:26379"}, MasterName: "mymaster", SentinelPassword: "hunter2"}),
			"redis sentinel master mymaster via 10.0.0.5:26379 10.0.0.6:26379 prefix session:"},
		{"memory/sid/" + key(StoreConfig{Type: storeMemory}), "memory (cookie sid)"},
		{"memory/sid", "memory (cookie sid)"},
		{"not json hunter2", "(unknown store)"},
	}
	for _, tt := range tests {
		if got := describeStore(tt.key); got != tt.want {
			t.Errorf("describeStore(%s) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestParseRedisStoreOptions(t *testing.T) {
	input := `store redis {
		address redis://10.0.0.5:26379 redis://10.0.0.6:26379
		master_name mymaster
		sentinel_username watcher
		sentinel_password {env.SENTINEL_PASSWORD}
		tls {
			ca /etc/redis/ca.pem
			cert /etc/redis/client.pem
			key /etc/redis/client-key.pem
			server_name redis.internal
		}
	}`
	d := caddyfile.NewTestDispenser(input)
	d.Next()
	c, err := parseStore(d)
	if err != nil {
		t.Fatal(err)
	}
	want := StoreConfig{Type: storeRedis, Addresses: []string{"redis://10.0.0.5:26379", "redis://10.0.0.6:26379"},
		MasterName: "mymaster", SentinelUsername: "watcher", SentinelPassword: "{env.SENTINEL_PASSWORD}",
		TLS: true, TLSCA: "/etc/redis/ca.pem", TLSCert: "/etc/redis/client.pem", TLSKey: "/etc/redis/client-key.pem", TLSServerName: "redis.internal"}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got  %+v\nwant %+v", *c, want)
	}

	for input, want := range map[string]StoreConfig{
		"store redis {\n cluster\n}":                {Type: storeRedis, Cluster: true},
		"store redis {\n cluster true\n}":           {Type: storeRedis, Cluster: true},
		"store redis {\n cluster false\n}":          {Type: storeRedis},
		"store redis {\n tls\n}":                    {Type: storeRedis, TLS: true},
		"store redis {\n tls true\n}":               {Type: storeRedis, TLS: true},
		"store redis {\n tls false\n}":              {Type: storeRedis},
		"store redis {\n tls {\n ca /ca.pem\n }\n}": {Type: storeRedis, TLS: true, TLSCA: "/ca.pem"},
		"store redis {\n client_cache\n}":           {Type: storeRedis, ClientCache: defaultClientCache},
		"store redis {\n client_cache 500\n}":       {Type: storeRedis, ClientCache: 500},
	} {
		d := caddyfile.NewTestDispenser(input)
		d.Next()
		c, err := parseStore(d)
		if err != nil || !reflect.DeepEqual(*c, want) {
			t.Errorf("%q: %+v %v", input, c, err)
		}
	}

	for input, wantErr := range map[string]string{
		"store redis {\n cluster maybe\n}":                 `cluster must be true or false, not "maybe"`,
		"store redis {\n cluster true false\n}":            "wrong argument count",
		"store redis {\n tls sometimes\n}":                 `tls must be true or false, or a block`,
		"store redis {\n tls false {\n ca /ca.pem\n }\n}":  "tls false cannot have a block",
		"store redis {\n tls {\n colour blue\n }\n}":       `unrecognized tls option "colour"`,
		"store redis {\n tls {\n ca\n }\n}":                "wrong argument count",
		"store redis {\n tls {\n ca a\n ca b\n }\n}":       "tls ca specified more than once",
		"store redis {\n tls {\n cert /c.pem\n }\n}":       "cert and key go together",
		"store memory {\n cluster\n}":                      `unrecognized option "cluster" for store memory`,
		"store memory {\n sentinel_password {env.X}\n}":    `unrecognized option "sentinel_password" for store memory`,
		"store redis {\n sentinel_password\n}":             "wrong argument count",
		"store redis {\n sentinel_username a b\n}":         "wrong argument count",
		"store redis {\n tls {\n server_name a b\n }\n}":   "wrong argument count",
		"store redis {\n tls true\n tls {\n ca /c\n }\n}":  "tls specified more than once",
		"store redis {\n tls {\n key /k.pem\n }\n}":        "cert and key go together",
		"store redis {\n cluster\n cluster\n}":             "cluster specified more than once",
		"store redis {\n sentinel_password a\n tls b c\n}": "wrong argument count",
		"store redis {\n client_cache 0\n}":                "client_cache",
		"store redis {\n client_cache 5 6\n}":              "wrong argument count",
		"store memory {\n client_cache\n}":                 `unrecognized option "client_cache" for store memory`,
	} {
		d := caddyfile.NewTestDispenser(input)
		d.Next()
		if _, err := parseStore(d); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: err = %v, want %q", input, err, wantErr)
		}
	}
}

// resolvedRedisOptions is redisOptions after resolveStoreConfig, as
// openStore makes them.
func resolvedRedisOptions(c StoreConfig) (*redis.UniversalOptions, error) {
	resolved, err := resolveStoreConfig(&c)
	if err != nil {
		return nil, err
	}
	return redisOptions(&resolved)
}

// client_cache follows one server only, database 0: go-redis's client-side
// caching covers nothing else, and an error says so at load.
func TestClientCacheRefusals(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    StoreConfig
		want string
	}{
		{"cluster", StoreConfig{Cluster: true}, "single Redis server"},
		{"sentinels", StoreConfig{MasterName: "m", Addresses: []string{"10.0.0.5:26379"}}, "single Redis server"},
		{"several addresses", StoreConfig{Addresses: []string{"10.0.0.5:6379", "10.0.0.6:6379"}}, "single Redis server"},
		{"a database", StoreConfig{DB: 2}, "database 0"},
		{"a database in the URL", StoreConfig{Addresses: []string{"redis://u:hunter2@10.0.0.5:6379/3"}}, "database 0"},
		{"a negative size", StoreConfig{ClientCache: -1}, "positive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Type = storeRedis
			if tt.c.ClientCache == 0 {
				tt.c.ClientCache = 100
			}
			opts, err := redisOptions(&tt.c)
			if err != nil {
				t.Fatal(err)
			}
			_, err = newCachedRedisStore(&tt.c, opts, nil, "session:")
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %v, want one that says %q", err, tt.want)
			}
		})
	}
}

// client_cache belongs to a Redis session store: on a memory store or a
// revocation map, in the Caddyfile or in JSON, it is refused, not ignored.
func TestClientCacheOnlyOnARedisStore(t *testing.T) {
	if _, _, err := openStore(&StoreConfig{Type: storeMemory, ClientCache: 10}, "session"); err == nil || !strings.Contains(err.Error(), "only a Redis store") {
		t.Errorf("memory store with client_cache: %v", err)
	}
	if _, _, err := openRevocations(&RevocationStoreConfig{StoreConfig: StoreConfig{Type: storeRedis, ClientCache: 10}}, "session"); err == nil || !strings.Contains(err.Error(), "no client_cache") {
		t.Errorf("revocation map with client_cache: %v", err)
	}
	p := &caddyfileParser{h: &Handler{}}
	d := caddyfile.NewTestDispenser("revocation_store redis {\n client_cache\n}")
	d.Next()
	if err := parseRevocationStore(p, d); err == nil || !strings.Contains(err.Error(), "no client_cache") {
		t.Errorf("revocation_store redis { client_cache }: %v", err)
	}
}
