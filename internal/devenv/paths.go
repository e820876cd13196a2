package devenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// AssetsDir finds kube-apiserver and etcd: $KUBEBUILDER_ASSETS, else what
// `make envtest` built into bin/k8s/<version>-<os>-<arch> of the
// repository around the working directory, else next to the gatehouse
// binary (bin/gatehouse beside bin/k8s).
func AssetsDir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		if !hasControlPlane(dir) {
			return "", fmt.Errorf("KUBEBUILDER_ASSETS=%s has no kube-apiserver and etcd", dir)
		}
		return dir, nil
	}
	var looked []string
	for _, base := range searchRoots() {
		pattern := filepath.Join(base, "bin", "k8s", "*")
		if filepath.Base(base) == "bin" {
			pattern = filepath.Join(base, "k8s", "*")
		}
		looked = append(looked, filepath.Dir(pattern))
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			if hasControlPlane(m) {
				return m, nil
			}
		}
	}
	return "", fmt.Errorf("no kube-apiserver and etcd in %v: run `make envtest` in the repository, or set KUBEBUILDER_ASSETS", looked)
}

// CRDDir finds config/crd/bases in the repository around the working
// directory or the gatehouse binary.
func CRDDir() (string, error) {
	var looked []string
	for _, base := range searchRoots() {
		if filepath.Base(base) == "bin" {
			base = filepath.Dir(base)
		}
		dir := filepath.Join(base, "config", "crd", "bases")
		looked = append(looked, dir)
		if matches, _ := filepath.Glob(filepath.Join(dir, "*.yaml")); len(matches) > 0 {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no CRDs in %v: run gatehouse dev inside the repository, or pass --crds", looked)
}

// searchRoots are the working directory and its parents, then the
// directory of the running binary.
func searchRoots() []string {
	var roots []string
	if dir, err := os.Getwd(); err == nil {
		for {
			roots = append(roots, dir)
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if exe, err := os.Executable(); err == nil {
		roots = append(roots, filepath.Dir(exe))
	}
	return roots
}

func hasControlPlane(dir string) bool {
	for _, name := range []string{"kube-apiserver", "etcd"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// stateMarker marks a directory as a gatehouse dev state directory, so that
// --reset never deletes a directory it did not create.
const stateMarker = ".gatehouse-dev-state"

// ErrLocked says another gatehouse dev uses the state directory.
var ErrLocked = errors.New("another gatehouse dev is running with this state directory")

// StateDir is a locked state directory.
type StateDir struct {
	Path string
	// Reused is true when the directory held the state of an earlier run.
	Reused bool
	lock   *os.File
}

// OpenStateDir creates or reuses dir and locks it for this process. A
// non-empty directory that is not a state directory is refused, so that a
// mistyped --state-dir never becomes one (and --reset never empties it).
func OpenStateDir(dir string) (*StateDir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("state directory: %w", err)
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(abs, stateMarker)); err != nil {
			return nil, fmt.Errorf("%s is not empty and is not a gatehouse dev state directory (no %s): choose another --state-dir", abs, stateMarker)
		}
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(abs, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("%s: %w", abs, ErrLocked)
	}
	s := &StateDir{Path: abs, lock: lock}
	if err := s.mark(); err != nil {
		_ = lock.Close()
		return nil, err
	}
	_, err = os.Stat(filepath.Join(abs, "etcd", "member"))
	s.Reused = err == nil
	return s, nil
}

// Reset deletes the state of earlier runs. Stop their Leftovers first.
func (s *StateDir) Reset() error {
	entries, err := os.ReadDir(s.Path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "lock" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.Path, e.Name())); err != nil {
			return fmt.Errorf("resetting the state directory: %w", err)
		}
	}
	s.Reused = false
	return s.mark()
}

func (s *StateDir) mark() error {
	return os.WriteFile(filepath.Join(s.Path, stateMarker), []byte("state of `gatehouse dev`; --reset deletes this directory's contents\n"), 0o600)
}

// Close releases the lock.
func (s *StateDir) Close() error { return s.lock.Close() }

// Leftovers finds etcd and kube-apiserver processes that still use this
// state directory: what remains when an earlier gatehouse dev was killed
// with SIGKILL and could not stop its children. Call it with the state
// directory locked, so that none of them belongs to a live run.
func (s *StateDir) Leftovers() []Leftover {
	marks := []string{
		"--data-dir=" + filepath.Join(s.Path, "etcd"),
		"--cert-dir=" + filepath.Join(s.Path, "apiserver"),
	}
	var found []Leftover
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		for _, a := range args[1:] {
			if slices.Contains(marks, a) {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
				found = append(found, Leftover{PID: pid, Name: filepath.Base(args[0])})
				break
			}
		}
	}
	// The API server first: it is etcd's client, and it shuts down slowly
	// once etcd has gone.
	slices.SortStableFunc(found, func(a, b Leftover) int {
		return strings.Compare(b.Name, a.Name) // kube-apiserver before etcd
	})
	return found
}

// Leftover is a process of an earlier run.
type Leftover struct {
	PID  int
	Name string
}

// Stop sends SIGTERM and waits up to 10s for the process to go, then
// sends SIGKILL.
func (l Leftover) Stop() error {
	p, err := os.FindProcess(l.PID)
	if err != nil {
		return err
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return nil // gone already
	}
	for range 100 {
		if p.Signal(syscall.Signal(0)) != nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p.Kill()
}
