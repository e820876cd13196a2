package main

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestTracingEnvReachesServers: the token servers get the operator's
// OTEL_* settings, not its service name nor anything else.
func TestTracingEnvReachesServers(t *testing.T) {
	got := tracingEnv([]string{"PATH=/bin", "OTEL_TRACES_SAMPLER_ARG=0.01", "OTEL_SERVICE_NAME=gatehouse-operator",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318", "KUBERNETES_SERVICE_HOST=10.0.0.1"})
	want := []corev1.EnvVar{{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: "http://collector:4318"}, {Name: "OTEL_TRACES_SAMPLER_ARG", Value: "0.01"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tracingEnv = %v, want %v", got, want)
	}
}
