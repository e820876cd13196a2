// Package testldap runs a throwaway OpenLDAP server (Debian's `slapd`
// package) for tests, the way internal/testpg runs PostgreSQL.
//
//	srv := testldap.Start(t, testldap.SeedLDIF)
//
// The server listens on 127.0.0.1 only, on two free ports: plain LDAP (for
// StartTLS) and LDAP over TLS, with a certificate for 127.0.0.1 and
// localhost from a CA made for the test (Server.CAPEM). Its database is
// loaded from LDIF with slapadd before it starts, under the suffix
// dc=example,dc=com with the root DN cn=admin,dc=example,dc=com. It is a
// child of the test process and is stopped when the test ends. Without
// slapd the test is skipped loudly, or fails under GATEHOUSE_REQUIRE_ALL=1.
package testldap

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// Suffix and the root account of every test server.
const (
	Suffix        = "dc=example,dc=com"
	AdminDN       = "cn=admin," + Suffix
	AdminPassword = "admin-secret-for-tests"
)

// Server is a running slapd.
type Server struct {
	// Addr is host:port of plain LDAP (use StartTLS); TLSAddr of LDAPS.
	Addr, TLSAddr string
	// CAPEM is the CA that signed the server's certificate.
	CAPEM []byte
	// Log is the path of slapd's log.
	Log string
}

// binaries are where Debian puts slapd and slapadd.
var binaries = []string{"/usr/sbin/slapd", "/usr/sbin/slapadd"}

// ModuleDir holds back_mdb.
const moduleDir = "/usr/lib/ldap"

// Start starts a server seeded with ldif (entries below Suffix, in
// parent-first order; Suffix itself is added here).
func Start(t testing.TB, ldif string) *Server {
	t.Helper()
	for _, b := range binaries {
		if _, err := os.Stat(b); err != nil {
			testenv.MissingDependency(t, fmt.Errorf("no %s: install the slapd package (Debian: apt-get install slapd ldap-utils)", b))
		}
	}
	dir := t.TempDir()
	ca, cert, key, err := makeCerts()
	if err != nil {
		t.Fatalf("testldap: certificates: %v", err)
	}
	files := map[string][]byte{"ca.pem": ca, "cert.pem": cert, "key.pem": key, "seed.ldif": []byte(baseLDIF + ldif)}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(config(dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/sbin/slapadd", "-f", conf, "-l", filepath.Join(dir, "seed.ldif")).CombinedOutput(); err != nil {
		t.Fatalf("testldap: slapadd: %v\n%s", err, out)
	}
	s := &Server{CAPEM: ca, Log: filepath.Join(dir, "slapd.log")}
	for attempt := 1; ; attempt++ {
		err := s.start(t, dir, conf)
		if err == nil {
			return s
		}
		if attempt == 3 {
			t.Fatalf("testldap: %v", err)
		}
	}
}

func (s *Server) start(t testing.TB, dir, conf string) error {
	plain, secure, err := freePort(), freePort(), error(nil)
	if plain == 0 || secure == 0 {
		return errors.New("no free port")
	}
	s.Addr = "127.0.0.1:" + strconv.Itoa(plain)
	s.TLSAddr = "127.0.0.1:" + strconv.Itoa(secure)
	logf, err := os.Create(s.Log)
	if err != nil {
		return err
	}
	// -d 0: stay in the foreground (a child we can stop) and log nothing
	// but errors to stderr.
	cmd := exec.Command("/usr/sbin/slapd", "-f", conf, "-d", "0",
		"-h", fmt.Sprintf("ldap://%s/ ldaps://%s/", s.Addr, s.TLSAddr))
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, dir
	if err := cmd.Start(); err != nil {
		_ = logf.Close() // nothing was written through it
		return fmt.Errorf("starting slapd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); _ = logf.Close() }() // slapd wrote through its own descriptor
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(s.Log)
			return fmt.Errorf("slapd exited: %v\n%s", err, out)
		default:
		}
		if reachable(s.Addr) && reachable(s.TLSAddr) {
			t.Cleanup(func() {
				_ = cmd.Process.Signal(os.Interrupt)
				select {
				case err := <-exited:
					if err != nil {
						t.Logf("slapd stopped on SIGINT: %v", err)
					}
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
					t.Logf("slapd did not stop within 10s of SIGINT, killed: %v", <-exited)
				}
			})
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return fmt.Errorf("slapd did not listen within 15s (killed: %v)", <-exited)
}

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func config(dir string) string {
	var b bytes.Buffer
	for _, s := range []string{"core", "cosine", "inetorgperson", "nis"} {
		fmt.Fprintf(&b, "include /etc/ldap/schema/%s.schema\n", s)
	}
	fmt.Fprintf(&b, `pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath %[2]s
moduleload back_mdb
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/cert.pem
TLSCertificateKeyFile %[1]s/key.pem
database mdb
maxsize 16777216
suffix "%[3]s"
rootdn "%[4]s"
rootpw %[5]s
directory %[1]s/db
index objectClass eq
index uid eq
index member eq
`, dir, moduleDir, Suffix, AdminDN, AdminPassword)
	// Anyone may bind (the directory checks passwords); only the admin
	// reads the rest, as a directory's service account would.
	b.WriteString(`access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to *
  by dn.exact="` + AdminDN + `" read
  by dn.exact="` + ServiceDN + `" read
  by * none
`)
	return b.String()
}

const baseLDIF = "dn: " + Suffix + "\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
