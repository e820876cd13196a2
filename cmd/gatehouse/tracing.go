package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/gatehouse-dev/gatehouse/internal/tracing"
	"github.com/gatehouse-dev/gatehouse/internal/version"
)

// startTracing turns on OpenTelemetry tracing when the OTEL_* environment
// variables ask for it (package tracing); the returned function exports
// what is pending as the process stops, for at most 5 seconds.
func startTracing(ctx context.Context, service string) (func(), error) {
	shutdown, err := tracing.Setup(ctx, service, version.Get().Version)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(ctx) // spans not exported by then are lost, as the exporter's own timeout would lose them
	}, nil
}

// tracingEnv is the operator's OTEL_* environment, which the token servers
// it runs get too, so that one setting traces both; OTEL_SERVICE_NAME is
// the operator's own (the servers are gatehouse-server).
func tracingEnv(environ []string) []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "OTEL_") && name != "OTEL_SERVICE_NAME" {
			env = append(env, corev1.EnvVar{Name: name, Value: value})
		}
	}
	slices.SortFunc(env, func(a, b corev1.EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return env
}
