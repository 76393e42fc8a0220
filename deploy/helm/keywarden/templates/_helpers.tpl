{{- define "keywarden.name" -}}keywarden{{- end -}}

{{- define "keywarden.labels" -}}
app.kubernetes.io/name: keywarden
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "keywarden.selector" -}}
app.kubernetes.io/name: keywarden
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "keywarden.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Whether an optional monitoring object is rendered: true, false, or auto (only when its CRD API exists). */}}
{{- define "keywarden.monitoring" -}}
{{- $v := index . 0 -}}{{- $ctx := index . 1 -}}
{{- if eq (toString $v) "auto" -}}
{{- if $ctx.Capabilities.APIVersions.Has "monitoring.coreos.com/v1" -}}true{{- end -}}
{{- else if $v -}}true{{- end -}}
{{- end -}}
