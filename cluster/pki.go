package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a cluster's certificate authority: it issues the certificates the
// nodes present to each other (mutual TLS on every gRPC connection). Its
// key should stay on the machine where certificates are made.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

// NewCA makes a CA with a new P-256 key, valid for valid from now.
func NewCA(name string, valid time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cluster: CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"mailsys cluster"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(valid),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("cluster: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cluster: CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// LoadCA reads a CA written by WriteFiles.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster: CA %s: %w", certFile, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !pair.Leaf.IsCA {
		return nil, fmt.Errorf("cluster: %s is not a CA made by NewCA", certFile)
	}
	return &CA{cert: pair.Leaf, key: key, certPEM: certPEM}, nil
}

// CertPEM returns the CA's certificate, which every node trusts.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// WriteFiles writes the CA's certificate (ca.pem) and key (ca.key, mode
// 0600) into dir.
func (ca *CA) WriteFiles(dir string) error {
	der, err := x509.MarshalECPrivateKey(ca.key)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return writePair(dir, "ca", ca.certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

// Issue makes a certificate for node id, for both ends of a connection
// (server and client authentication), with the node id as a DNS name (the
// name peers check) and hosts (IP addresses or DNS names) beside it. It
// returns the certificate and its key in PEM.
func (ca *CA) Issue(id string, hosts []string, valid time.Duration) (certPEM, keyPEM []byte, err error) {
	if !nodeID.MatchString(id) {
		return nil, nil, fmt.Errorf("%w: node id %q", ErrInvalid, id)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: node key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	notAfter := now.Add(valid)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id, Organization: []string{"mailsys cluster"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{id},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" && h != id {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: node certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// IssueFiles issues a certificate for node id (see Issue) and writes it
// into dir as id.pem and id.key (mode 0600), with the CA's certificate as
// ca.pem beside them.
func (ca *CA) IssueFiles(dir, id string, hosts []string, valid time.Duration) error {
	certPEM, keyPEM, err := ca.Issue(id, hosts, valid)
	if err != nil {
		return err
	}
	if err := writePair(dir, id, certPEM, keyPEM); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "ca.pem"), ca.certPEM, 0o644)
}

// Credentials are what a node needs for mutual TLS: its certificate and
// the cluster CA it trusts.
type Credentials struct {
	Cert  tls.Certificate
	Roots *x509.CertPool
}

// LoadCredentials reads a node's certificate and key, and the CA's
// certificate, from PEM files.
func LoadCredentials(certFile, keyFile, caFile string) (Credentials, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return Credentials{}, fmt.Errorf("cluster: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return Credentials{}, fmt.Errorf("cluster: %w", err)
	}
	return NewCredentials(cert, caPEM)
}

// NewCredentials makes Credentials from a certificate and the CA's
// certificate in PEM.
func NewCredentials(cert tls.Certificate, caPEM []byte) (Credentials, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return Credentials{}, errors.New("cluster: no CA certificate in the PEM given")
	}
	return Credentials{Cert: cert, Roots: roots}, nil
}

// ServerConfig is the TLS config of a node's gRPC listener: TLS 1.3, and a
// client certificate from the cluster CA required.
func (c Credentials) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.Cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.Roots,
		NextProtos:   []string{"h2"},
	}
}

// ClientConfig is the TLS config for calls to node peer: TLS 1.3, the
// peer's certificate checked against the cluster CA and the node id, and
// this node's certificate presented.
func (c Credentials) ClientConfig(peer string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.Cert},
		RootCAs:      c.Roots,
		ServerName:   peer,
		NextProtos:   []string{"h2"},
	}
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("cluster: serial number: %w", err)
	}
	return n, nil
}

func writePair(dir, name string, certPEM, keyPEM []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := writeFile(filepath.Join(dir, name+".key"), keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, name+".pem"), certPEM, 0o644)
}

func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}
