{{- define "type" -}}
{{- $type := . -}}
{{- if markdownShouldRenderType $type }}

### {{ $type.Name }}
{{ if $type.IsAlias }}
Type: {{ markdownRenderTypeLink $type.UnderlyingType }}.
{{ end }}
{{ replace "<" "&lt;" $type.Doc }}
{{ with $type.Validation }}
Validation:
{{ range . }}
{{- if not (hasPrefix "Optional:" .) }}
- {{ . }}
{{- end }}
{{- end }}
{{ end -}}
{{- with index $type.Markers "kubebuilder:validation:XValidation" }}
Refused at apply time:
{{ range . }}
- {{ replace "<" "&lt;" .Message }}
{{- end }}
{{ end -}}
{{- if $type.References }}
Used in: {{ range $i, $r := $type.SortedReferences }}{{ if $i }}, {{ end }}{{ markdownRenderTypeLink $r }}{{ end }}.
{{ end -}}
{{- if $type.Members }}
| Field | Type | Default | Description |
| --- | --- | --- | --- |
{{- if $type.GVK }}
| `apiVersion` | string | | `{{ $type.GVK.Group }}/{{ $type.GVK.Version }}` |
| `kind` | string | | `{{ $type.GVK.Kind }}` |
{{- end }}
{{- range $type.Members }}
| `{{ .Name }}` | {{ markdownRenderType .Type }} | {{ with .Default }}`{{ replace "{  }" "{}" . }}`{{ end }} | {{ template "type_members" . }} |
{{- end }}
{{ end -}}
{{- if $type.EnumValues }}
| Value | Description |
| --- | --- |
{{- range $type.EnumValues }}
| `{{ .Name }}` | {{ markdownRenderFieldDoc (replace "<" "&lt;" .Doc) }} |
{{- end }}
{{ end -}}
{{- end -}}
{{- end -}}
