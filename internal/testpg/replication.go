package testpg

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// StartPrimary starts a server that streams its WAL to replicas
// (StartReplica), for failover tests. Unlike Start's, its commits are
// durable against a crash of the server process (synchronous_commit on);
// with sync, a commit also waits until a replica has flushed it
// (synchronous_standby_names '*'), so a replica promoted after the primary
// dies has every commit a client was told of.
func StartPrimary(sync bool) (*Server, error) {
	conf := []string{"wal_level=replica", "max_wal_senders=8", "wal_keep_size=256MB", "hot_standby=on", "synchronous_commit=on"}
	if sync {
		conf = append(conf, "synchronous_standby_names=*")
	}
	return start(conf)
}

// StartReplica copies s with pg_basebackup and starts the copy as a hot
// standby streaming from s, on a port of its own.
func (s *Server) StartReplica() (*Server, error) {
	// Promoted, the replica has no standby of its own to wait for: a
	// failover tool reconfigures it the same way.
	var conf []string
	for _, c := range s.conf {
		if !strings.HasPrefix(c, "synchronous_standby_names=") {
			conf = append(conf, c)
		}
	}
	r := &Server{BinDir: s.BinDir, runAs: s.runAs, conf: conf}
	var err error
	if r.dir, err = r.makeDir(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(r.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(r.dir)
		return nil, err
	}
	data := filepath.Join(r.dir, "data")
	out, err := r.command("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres",
		"-D", data, "-R", "-X", "stream", "-c", "fast", "--no-sync").CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(r.dir)
		return nil, fmt.Errorf("pg_basebackup: %w\n%s", err, out)
	}
	for attempt := 1; ; attempt++ {
		if r.Port, err = freePort(); err != nil {
			break
		}
		if err = r.startServer(); err == nil {
			return r, nil
		}
		if attempt == 3 {
			break
		}
	}
	_ = os.RemoveAll(r.dir)
	return nil, err
}

// Crash stops the server at once, as a crash would (pg_ctl stop -m
// immediate: no checkpoint, connections cut), keeping its data for
// Restart.
func (s *Server) Crash() error {
	out, err := s.command("pg_ctl", "stop", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop -m immediate: %w\n%s", err, out)
	}
	s.down = true
	select {
	case <-s.exited: //nolint:errcheck // an immediate stop exits non-zero
	case <-time.After(30 * time.Second):
		return errors.New("postgres did not exit within 30s of pg_ctl stop")
	}
	return nil
}

// Restart starts a crashed or stopped server again on its port; it
// recovers from its WAL first.
func (s *Server) Restart() error { return s.startServer() }

// Promote turns a standby into a primary that accepts writes, and waits
// until it does.
func (s *Server) Promote() error {
	out, err := s.command("pg_ctl", "promote", "-D", filepath.Join(s.dir, "data"), "-w", "-t", "60").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl promote: %w\n%s", err, out)
	}
	return nil
}

// Dir is the server's temporary directory (its data, socket and log).
func (s *Server) Dir() string { return s.dir }
