package testldap

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// Admin connects to the server over TLS as its root DN, which may change
// anything: tests delete and disable people with it. The connection is
// closed when the test ends.
func (s *Server) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM)
	conn, err := ldap.DialURL("ldaps://"+s.TLSAddr, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}))
	if err != nil {
		t.Fatalf("testldap: connecting as the admin: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Bind(AdminDN, AdminPassword); err != nil {
		t.Fatalf("testldap: binding as the admin: %v", err)
	}
	return conn
}
