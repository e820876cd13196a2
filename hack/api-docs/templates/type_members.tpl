{{- define "type_members" -}}
{{- /* A field's markers include those of its type; list only the field's own,
       since the type's section lists the type's. */ -}}
{{- $field := . -}}
{{- $inherited := list -}}
{{- $inheritedRules := list -}}
{{- range $t := list $field.Type $field.Type.UnderlyingType -}}
{{- if and $t (markdownShouldRenderType $t) -}}
{{- $inherited = concat $inherited $t.Validation -}}
{{- with index $t.Markers "kubebuilder:validation:XValidation" -}}
{{- range . }}{{ $inheritedRules = append $inheritedRules .Message }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $parts := list -}}
{{- if eq $field.Name "metadata" -}}
{{- $parts = append $parts "Standard Kubernetes object metadata." -}}
{{- else if $field.Doc -}}
{{- $parts = append $parts (markdownRenderFieldDoc (replace "<" "&lt;" $field.Doc)) -}}
{{- end -}}
{{- range $field.Validation -}}
{{- if not (or (hasPrefix "Optional:" .) (has . $inherited)) -}}
{{- $parts = append $parts (markdownRenderFieldDoc .) -}}
{{- end -}}
{{- end -}}
{{- with index $field.Markers "kubebuilder:validation:XValidation" -}}
{{- range . -}}
{{- if not (has .Message $inheritedRules) -}}
{{- $parts = append $parts (printf "Refused: %s" (markdownRenderFieldDoc (replace "<" "&lt;" .Message))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- join "<br />" $parts -}}
{{- end -}}
