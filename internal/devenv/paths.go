package devenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
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

// OpenStateDir creates or reuses dir and locks it for this process. With
// reset, an existing state directory is emptied first; a non-empty
// directory that is not a state directory is refused.
func OpenStateDir(dir string, reset bool) (*StateDir, error) {
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
	if reset {
		entries, _ := os.ReadDir(abs)
		for _, e := range entries {
			if e.Name() == "lock" {
				continue
			}
			if err := os.RemoveAll(filepath.Join(abs, e.Name())); err != nil {
				_ = lock.Close()
				return nil, fmt.Errorf("resetting the state directory: %w", err)
			}
		}
	}
	_, err = os.Stat(filepath.Join(abs, "etcd", "member"))
	reused := err == nil
	if err := os.WriteFile(filepath.Join(abs, stateMarker), []byte("state of `gatehouse dev`; --reset deletes this directory's contents\n"), 0o600); err != nil {
		_ = lock.Close()
		return nil, err
	}
	return &StateDir{Path: abs, Reused: reused, lock: lock}, nil
}

// Close releases the lock.
func (s *StateDir) Close() error { return s.lock.Close() }
