// Package servingcert gives the token server its TLS certificate: a key
// pair read from files and reloaded when the files change, so that a
// renewed certificate (cert-manager, or the kubelet updating a mounted
// kubernetes.io/tls Secret) is served without a restart; and, for
// development, a local certificate authority that issues one.
package servingcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader serves the key pair in two PEM files and reads them again when
// asked (Reload) or every interval (Watch). A pair that does not load
// leaves the one in use in place: a half-written renewal must never take
// the server off the air.
type Reloader struct {
	certFile, keyFile string

	current atomic.Pointer[tls.Certificate]
	mu      sync.Mutex // serializes Reload
	certPEM []byte     // what current was made from
	keyPEM  []byte
}

// Load reads the pair once. It fails when the files are missing, do not
// match or hold no certificate.
func Load(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files and, when they changed and hold a valid pair,
// serves the new pair from the next handshake on. It says whether the
// served pair changed.
func (r *Reloader) Reload() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return false, fmt.Errorf("reading the TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return false, fmt.Errorf("reading the TLS key: %w", err)
	}
	if r.current.Load() != nil && bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM) {
		return false, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("TLS key pair %s, %s: %w", r.certFile, r.keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return false, fmt.Errorf("TLS certificate %s: %w", r.certFile, err)
		}
	}
	r.current.Store(&pair)
	r.certPEM, r.keyPEM = certPEM, keyPEM
	return true, nil
}

// Watch calls Reload every interval until ctx ends. report hears of each
// change (err nil) and each failed reload (the old pair stays served).
// Polling, rather than inotify, follows the kubelet's atomic symlink swap
// of a Secret volume and works on every filesystem.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration, report func(leaf *x509.Certificate, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := r.Reload()
		switch {
		case err != nil:
			report(nil, err)
		case changed:
			report(r.Leaf(), nil)
		}
	}
}

// Leaf is the certificate being served.
func (r *Reloader) Leaf() *x509.Certificate { return r.current.Load().Leaf }

// LeafFunc returns Leaf as a function, or nil for a nil Reloader (no TLS),
// for the certificate-expiry metric.
func (r *Reloader) LeafFunc() func() *x509.Certificate {
	if r == nil {
		return nil
	}
	return r.Leaf
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.current.Load(), nil
}

// TLSConfig is a server configuration serving the reloaded pair, TLS 1.2
// or later.
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}
