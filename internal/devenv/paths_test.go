package devenv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenStateDir(t *testing.T) {
	// A directory with someone's files is never taken over, even with --reset.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStateDir(other); err == nil || !strings.Contains(err.Error(), "not a gatehouse dev state directory") {
		t.Errorf("err = %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(other, "notes.txt")); err != nil {
		t.Fatalf("the user's file is gone: %v", err)
	}

	dir := filepath.Join(t.TempDir(), "state")
	s, err := OpenStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Reused {
		t.Error("a new directory is reported as reused")
	}
	// A second dev on the same state is refused while the first runs.
	if _, err := OpenStateDir(dir); !errors.Is(err, ErrLocked) {
		t.Errorf("second open: err = %v, want ErrLocked", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "etcd", "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Reused {
		t.Error("a directory with etcd data is not reported as reused")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	if len(s.Leftovers()) != 0 {
		t.Errorf("leftover processes reported for a directory no process uses: %v", s.Leftovers())
	}
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if s.Reused {
		t.Error("--reset kept the old state")
	}
	if _, err := os.Stat(filepath.Join(dir, "etcd")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--reset left etcd's data: %v", err)
	}
}
