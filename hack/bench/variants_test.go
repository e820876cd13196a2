package main

import (
	"reflect"
	"testing"
)

func TestParseVariants(t *testing.T) {
	got, err := parseVariants("audit-off=--audit-log off @/tmp/gh; tracing=OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.01 --audit-log {dir}/a.log;plain=")
	if err != nil {
		t.Fatal(err)
	}
	want := []variant{
		{name: "audit-off", args: []string{"--audit-log", "off"}, binary: "/tmp/gh"},
		{name: "tracing", args: []string{"--audit-log", "{dir}/a.log"}, env: []string{"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.01"}},
		{name: "plain"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseVariants = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"noequals", "=--x", "a=;a=", "two words=x"} {
		if _, err := parseVariants(bad); err == nil {
			t.Errorf("parseVariants(%q) = nil error", bad)
		}
	}
	if v, err := parseVariants(""); v != nil || err != nil {
		t.Errorf("parseVariants(\"\") = %v, %v", v, err)
	}
}
