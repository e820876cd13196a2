package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestServerFlags(t *testing.T) {
	t.Setenv(postgresURLEnv, "postgres://u:pw@127.0.0.1/db")
	f, err := parseServerFlags([]string{"--authorization-server", "auth-system/main"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.namespace != "auth-system" || f.name != "main" || f.listen != ":8080" || f.metricsListen != ":9090" || f.postgresURL != "postgres://u:pw@127.0.0.1/db" {
		t.Fatalf("flags = %+v", f)
	}
	for _, args := range [][]string{
		{},
		{"--authorization-server", "main"},
		{"--authorization-server", "Bad_NS/main"},
		{"--authorization-server", "a/b", "--listen", ":9090"},
		{"--authorization-server", "a/b", "--listen", "8080"},
		{"--authorization-server", "a/b", "--log-level", "loud"},
		{"--authorization-server", "a/b", "extra"},
	} {
		if _, err := parseServerFlags(args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
}

// The help text must not print the database password from the environment.
func TestServerHelpHidesPostgresURL(t *testing.T) {
	t.Setenv(postgresURLEnv, "postgres://u:hunter2@127.0.0.1/db")
	var out strings.Builder
	_, _ = parseServerFlags([]string{"-h"}, &out)
	if strings.Contains(out.String(), "hunter2") {
		t.Fatal("help output carries the database password")
	}
}
