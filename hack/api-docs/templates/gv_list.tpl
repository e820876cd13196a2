{{- define "gvList" -}}
# API reference

<!-- Generated from the Go types in api/ by `make manifests` (crd-ref-docs with
hack/api-docs/templates); do not edit. `make verify` fails when it is stale. -->

Every field of Gatehouse's custom resources, with its default, its
validation, and the rules the API server enforces at `kubectl apply` time
(CEL, with the message you get). What the resources are for and how they
work together: [concepts.md](../concepts.md).
{{ range . }}
{{ template "gvDetails" . }}
{{- end }}
{{- end -}}
