// Command pgstart is the entrypoint of the PostgreSQL image of the
// real-cluster tests (test/cluster), built from Debian's postgresql files:
// on first start it runs initdb (password from $POSTGRES_PASSWORD, scram
// for connections over the network), then it becomes postgres.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

func main() {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) != 1 {
		fail("want one /usr/lib/postgresql/*/bin/postgres, found %v", bins)
	}
	bin := filepath.Dir(bins[0])
	data := os.Getenv("PGDATA")
	if data == "" {
		data = "/var/lib/postgresql/data"
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		pw := os.Getenv("POSTGRES_PASSWORD")
		if pw == "" {
			fail("POSTGRES_PASSWORD is empty")
		}
		pwfile := "/tmp/pgpass"
		if err := os.WriteFile(pwfile, []byte(pw+"\n"), 0o600); err != nil {
			fail("%v", err)
		}
		cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--pwfile", pwfile,
			"--auth-local=trust", "--auth-host=scram-sha-256", "--locale=C", "--encoding=UTF8")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fail("initdb: %v", err)
		}
		_ = os.Remove(pwfile)
		f, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			fail("%v", err)
		}
		_, err = f.WriteString("host all all 0.0.0.0/0 scram-sha-256\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fail("pg_hba.conf: %v", err)
		}
	}
	args := []string{bins[0], "-D", data, "-c", "listen_addresses=*", "-c", "unix_socket_directories=/tmp"}
	if err := syscall.Exec(bins[0], args, os.Environ()); err != nil {
		fail("exec postgres: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pgstart: "+format+"\n", args...)
	os.Exit(1)
}
