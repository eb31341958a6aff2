package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The self-signed certificate: made on first use in the data directory,
// as certFileName (the certificate, which clients that verify it can be
// given as the one to trust) and keyFileName, both private to the user
// the server runs as, like the rest of the data directory. It covers
// localhost, 127.0.0.1 and ::1, and the -hostname; one found there that
// does not (an older one), or that expires within a month, is replaced.
const (
	certFileName = "tls-cert.pem"
	keyFileName  = "tls-key.pem"
	certValidity = 5 * 365 * 24 * time.Hour
)

// certNames returns the names the self-signed certificate covers for
// hostname: DNS names and IP addresses.
func certNames(hostname string) (dns []string, ips []net.IP) {
	dns = []string{"localhost"}
	ips = []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	if ip, err := netip.ParseAddr(strings.Trim(hostname, "[]")); err == nil {
		if !slices.ContainsFunc(ips, func(x net.IP) bool { return x.Equal(ip.AsSlice()) }) {
			ips = append(ips, ip.AsSlice())
		}
	} else if hostname != "" && !strings.EqualFold(hostname, "localhost") {
		dns = append(dns, hostname)
	}
	return dns, ips
}

// loadOrMakeCert loads the given certificate, or the self-signed one in
// the data directory, making it when it is missing or does not cover the
// names certNames gives.
func loadOrMakeCert(data, certFile, keyFile, hostname string, log *slog.Logger) (tls.Certificate, error) {
	if certFile != "" || keyFile != "" {
		return tls.LoadX509KeyPair(certFile, keyFile)
	}
	certFile, keyFile = filepath.Join(data, certFileName), filepath.Join(data, keyFileName)
	dns, ips := certNames(hostname)
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err == nil {
		why := covers(c.Leaf, dns, ips)
		if why == "" {
			log.Info("TLS certificate", "file", certFile, "self-signed", true, "names", namesOf(c.Leaf))
			return c, nil
		}
		log.Info("making a new self-signed TLS certificate", "file", certFile, "why", why)
	}
	c, err = makeCert(dns, ips)
	if err != nil {
		return tls.Certificate{}, err
	}
	kb, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	log.Info("TLS certificate", "file", certFile, "self-signed", true, "names", namesOf(c.Leaf))
	return tls.LoadX509KeyPair(certFile, keyFile)
}

// covers returns why cert does not do as the self-signed certificate for
// dns and ips, or "" if it does.
func covers(cert *x509.Certificate, dns []string, ips []net.IP) string {
	if time.Until(cert.NotAfter) < 30*24*time.Hour {
		return "expires " + cert.NotAfter.Format(time.DateOnly)
	}
	for _, n := range dns {
		if cert.VerifyHostname(n) != nil {
			return "does not cover " + n
		}
	}
	for _, ip := range ips {
		if cert.VerifyHostname(ip.String()) != nil {
			return "does not cover " + ip.String()
		}
	}
	return ""
}

// namesOf lists the names cert covers.
func namesOf(cert *x509.Certificate) string {
	names := slices.Clone(cert.DNSNames)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	return strings.Join(names, ",")
}

// makeCert returns a self-signed certificate for dns and ips with a P-256
// key, valid from an hour ago for certValidity. Its Leaf is set.
func makeCert(dns []string, ips []net.IP) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: dns[len(dns)-1], Organization: []string{"mailsys allinone (self-signed)"}},
		DNSNames:              dns,
		IPAddresses:           ips,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
