package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Certificates are PEM files made for a test: a CA, a server certificate
// it signed (for 127.0.0.1, localhost and TLSServerName), a client
// certificate it signed, and another CA that signed neither.
type Certificates struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
	OtherCA                                          string

	ca *testCA
}

// TLSServerName is a DNS name in the server's certificate besides
// 127.0.0.1 and localhost, for a client that sets the name to verify.
const TLSServerName = "redis.test"

// NewCertificates writes fresh Certificates in a temporary directory of
// the test.
func NewCertificates(t testing.TB) *Certificates {
	t.Helper()
	dir := t.TempDir()
	ca := newCA(t, "redistest CA")
	other := newCA(t, "redistest other CA")
	c := &Certificates{
		CA:         writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.der),
		OtherCA:    writePEM(t, dir, "other-ca.pem", "CERTIFICATE", other.der),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
		ca:         ca,
	}
	ca.issue(t, c.ServerCert, c.ServerKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "redis"},
		DNSNames:    []string{"localhost", TLSServerName},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	ca.issue(t, c.ClientCert, c.ClientKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "gateway"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return c
}

// ClientTLS is a TLS configuration that trusts the CA and shows the client
// certificate.
func (c *Certificates) ClientTLS(t testing.TB) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.ca.cert)
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}
}

// TLSServer is a redis-server that speaks only TLS and accepts only
// clients that show a certificate its CA signed.
type TLSServer struct {
	*Server
	*Certificates
}

// StartTLS makes Certificates and runs redis-server with TLS only
// (--port 0) on a free loopback port, asking clients for a certificate
// (--tls-auth-clients yes). Without redis-server the test fails when
// CI=true and is skipped otherwise.
func StartTLS(t testing.TB) *TLSServer {
	t.Helper()
	need(t, "redis-server", "redis-server")
	c := NewCertificates(t)
	port := FreePorts(t, 1)[0]
	s := &TLSServer{Certificates: c}
	s.Server = newServer(t, port, []string{"--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", c.ServerCert, "--tls-key-file", c.ServerKey,
		"--tls-ca-cert-file", c.CA, "--tls-auth-clients", "yes"})
	s.tlsConfig = c.ClientTLS(t)
	s.Restart()
	return s
}

type testCA struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, der: der, key: key}
}

// issue signs a leaf certificate for template and writes it and its key.
func (ca *testCA) issue(t testing.TB, certFile, keyFile string, template *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if template.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62)); err != nil {
		t.Fatal(err)
	}
	template.NotBefore = time.Now().Add(-time.Hour)
	template.NotAfter = time.Now().Add(24 * time.Hour)
	template.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Dir(certFile), filepath.Base(certFile), "CERTIFICATE", der)
	writePEM(t, filepath.Dir(keyFile), filepath.Base(keyFile), "PRIVATE KEY", keyDER)
}

func writePEM(t testing.TB, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
