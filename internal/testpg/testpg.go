// Package testpg runs a throwaway PostgreSQL server for tests, from the
// binaries of the operating system's PostgreSQL package (Debian:
// `postgresql`, which puts initdb and pg_ctl in /usr/lib/postgresql/N/bin).
//
// A test package starts one server for all its tests, and each test gets a
// database of its own:
//
//	func TestMain(m *testing.M) { os.Exit(testpg.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		url := testpg.Get(t).NewDatabase(t)
//		...
//	}
//
// The server listens on 127.0.0.1 only, on a free port, with its data
// directory and unix socket in a temporary directory, and runs without
// fsync: it holds nothing worth keeping. It is a child of the test process
// and dies with it. When the tests run as root it runs as the postgres user
// (through runuser), because initdb and postgres refuse to run as root.
package testpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// BinDirEnv names a variable that points at the directory holding initdb
// and pg_ctl, overriding the search.
const BinDirEnv = "GATEHOUSE_POSTGRES_BINDIR"

// Server is a running throwaway PostgreSQL server.
type Server struct {
	// BinDir holds the PostgreSQL binaries the server runs from.
	BinDir string
	// Port is the TCP port on 127.0.0.1.
	Port int

	dir     string       // temporary directory: data/, the socket, the log
	runAs   string       // user to run the binaries as; empty for the current one
	conf    []string     // settings passed with -c besides the defaults
	exited  <-chan error // the postgres process's Wait result
	nextDB  atomic.Int64
	stopped bool
	down    bool // crashed (Crash), not restarted yet
}

var (
	shared   *Server
	startErr error
)

// Run starts the server, runs the package's tests and stops the server. It
// returns the exit code for os.Exit. When PostgreSQL is not installed the
// tests still run, and each one that calls Get is skipped or failed by Get.
func Run(m *testing.M) int {
	shared, startErr = Start()
	if startErr != nil {
		fmt.Fprintf(os.Stderr, "testpg: NO POSTGRESQL, tests that need it will skip or fail: %v\n", startErr)
	}
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testpg: stopping PostgreSQL: %v\n", err)
		}
	}
	return code
}

// Get returns the package's server, or ends the test when there is none: a
// loud skip when PostgreSQL is not installed, a failure when it is missing
// under GATEHOUSE_REQUIRE_ALL=1 or when it would not start.
func Get(t testing.TB) *Server {
	t.Helper()
	var missing *MissingBinariesError
	switch {
	case shared != nil:
		return shared
	case errors.As(startErr, &missing):
		testenv.MissingDependency(t, startErr)
	case startErr != nil:
		t.Fatalf("test PostgreSQL did not start: %v", startErr)
	default:
		t.Fatal("testpg.Get called without testpg.Run in TestMain")
	}
	return nil
}

// MissingBinariesError says that initdb and pg_ctl were not found.
type MissingBinariesError struct{ Looked []string }

func (e *MissingBinariesError) Error() string {
	return fmt.Sprintf("no PostgreSQL initdb and pg_ctl (looked in %s): install the postgresql package (Debian: apt-get install postgresql) or set %s",
		strings.Join(e.Looked, ", "), BinDirEnv)
}

// Start initializes a data directory and starts a server on a free
// loopback port. Stop it with Stop.
func Start() (*Server, error) {
	// Nothing here needs to survive a crash.
	return start([]string{"synchronous_commit=off"})
}

func start(conf []string) (*Server, error) {
	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{BinDir: bin, conf: conf}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root, and initdb refuses root, but there is no postgres user to run it as: %w", err)
		}
		s.runAs = "postgres"
	}
	removeAbandoned()
	if s.dir, err = s.makeDir(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(s.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(s.dir)
		return nil, err
	}

	began := time.Now()
	fmt.Fprintf(os.Stderr, "testpg: starting PostgreSQL from %s in %s\n", bin, s.dir)
	data := filepath.Join(s.dir, "data")
	if out, err := s.command("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		_ = os.RemoveAll(s.dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// Another process can take the free port between our probe and the
	// server's bind: try a few ports.
	for attempt := 1; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			break
		}
		if err = s.startServer(); err == nil {
			fmt.Fprintf(os.Stderr, "testpg: PostgreSQL ready on 127.0.0.1:%d in %d ms\n", s.Port, time.Since(began).Milliseconds())
			return s, nil
		}
		if attempt == 3 {
			break
		}
	}
	_ = os.RemoveAll(s.dir)
	return nil, err
}

// startServer runs postgres as a child of the test process rather than
// daemonized by pg_ctl, with a parent-death signal: when the test binary is
// killed (Ctrl-C, go test -timeout) the server goes with it instead of
// lingering. runuser passes the signal on to postgres.
func (s *Server) startServer() error {
	logFile, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }() // the child writes through its own copy
	args := []string{"-D", filepath.Join(s.dir, "data"),
		"-c", "listen_addresses=127.0.0.1",
		"-p", strconv.Itoa(s.Port),
		"-c", "unix_socket_directories=" + s.dir,
		// Nothing here needs to survive a crash of the machine: a crash of
		// the server process leaves the WAL in the page cache.
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
	}
	for _, c := range s.conf {
		args = append(args, "-c", c)
	}
	cmd := s.command("postgres", args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			_ = conn.Close(ctx)
			s.exited, s.down = exited, false
			return nil
		}
		select {
		case werr := <-exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
			return fmt.Errorf("postgres on port %d exited: %v\n%s", s.Port, werr, lastLines(log, 20))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return fmt.Errorf("postgres on port %d not ready after 60s: %w", s.Port, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop stops the server and removes its files.
func (s *Server) Stop() error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	var errs []error
	if !s.down {
		if out, err := s.command("pg_ctl", "stop", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("pg_ctl stop: %w\n%s", err, out))
		}
		select {
		case <-s.exited: //nolint:errcheck // stopped with -m immediate: a failing exit status is what we asked for
		case <-time.After(30 * time.Second):
			errs = append(errs, errors.New("postgres did not exit within 30s of pg_ctl stop"))
		}
	}
	errs = append(errs, os.RemoveAll(s.dir))
	return errors.Join(errs...)
}

// URL returns a connection URL for a database on the server.
func (s *Server) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, database)
}

// NewDatabase creates an empty database for one test and returns its
// connection URL. The database is dropped when the test ends.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), s.nextDB.Add(1))
	if err := s.exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// FORCE ends connections a test left open (PostgreSQL 13+).
		if err := s.exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	return s.URL(name)
}

func (s *Server) exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// command runs a PostgreSQL binary, as the postgres user when we are root.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.BinDir, name)
	if s.runAs == "" {
		return exec.Command(path, args...)
	}
	return exec.Command("runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
}

// makeDir creates the temporary directory, owned by the user the server
// runs as. That user must reach it, so when the default temporary
// directory is private to root it falls back to /tmp.
func (s *Server) makeDir() (string, error) {
	for _, parent := range []string{os.TempDir(), "/tmp"} {
		dir, err := os.MkdirTemp(parent, dirPrefix)
		if err != nil {
			return "", err
		}
		if s.runAs == "" {
			return dir, nil
		}
		u, err := user.Lookup(s.runAs)
		if err != nil {
			return "", err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
		if exec.Command("runuser", "-u", s.runAs, "--", "test", "-w", dir).Run() == nil {
			return dir, nil
		}
		_ = os.RemoveAll(dir)
	}
	return "", fmt.Errorf("no temporary directory the %s user can write to", s.runAs)
}

const (
	dirPrefix = "gatehouse-testpg-"
	// ownerFile holds the PID of the test process a directory belongs to.
	ownerFile = "owner.pid"
)

// removeAbandoned removes the directories of test processes that died
// without cleaning up (killed by a signal or a timeout); their servers
// died with them. A directory whose owner is alive, or unknown, stays.
func removeAbandoned() {
	for _, parent := range []string{os.TempDir(), "/tmp"} {
		dirs, _ := filepath.Glob(filepath.Join(parent, dirPrefix+"*"))
		for _, dir := range dirs {
			b, err := os.ReadFile(filepath.Join(dir, ownerFile))
			if err != nil {
				continue
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 0 {
				continue
			}
			if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
				_ = os.RemoveAll(dir)
			}
		}
	}
}

// findBinDir finds the directory with initdb and pg_ctl: $BinDirEnv, then
// pg_config --bindir, then the newest /usr/lib/postgresql/N/bin (Debian's
// layout, which does not put initdb on PATH), then PATH.
func findBinDir() (string, error) {
	var candidates []string
	if dir := os.Getenv(BinDirEnv); dir != "" {
		candidates = append(candidates, dir)
	} else {
		if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
			candidates = append(candidates, strings.TrimSpace(string(out)))
		}
		debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		slices.SortFunc(debian, func(a, b string) int { return versionOf(b) - versionOf(a) })
		candidates = append(candidates, debian...)
		if initdb, err := exec.LookPath("initdb"); err == nil {
			candidates = append(candidates, filepath.Dir(initdb))
		}
	}
	for _, dir := range candidates {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "pg_ctl")) {
			return dir, nil
		}
	}
	looked := candidates
	if len(looked) == 0 {
		looked = []string{"pg_config --bindir", "/usr/lib/postgresql/*/bin", "PATH"}
	}
	return "", &MissingBinariesError{Looked: looked}
}

// versionOf returns N of /usr/lib/postgresql/N/bin.
func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(b []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}
