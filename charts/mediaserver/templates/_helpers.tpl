{{/*
Chart name, truncated to 63 characters (DNS label limit).
*/}}
{{- define "mediaserver.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: <release>-<chart>, or the release name alone when it
already contains the chart name. Truncated to 52 characters so that the derived
names (<fullname>-headless, <fullname>-jwt, pod names <fullname>-N and the
controller-revision-hash label of the StatefulSet) stay within the 63-character limit.
*/}}
{{- define "mediaserver.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value: <name>-<version>.
*/}}
{{- define "mediaserver.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "mediaserver.labels" -}}
helm.sh/chart: {{ include "mediaserver.chart" . }}
{{ include "mediaserver.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: server
{{- end }}

{{/*
Selector labels (immutable on the StatefulSet: never add to these).
*/}}
{{- define "mediaserver.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mediaserver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the headless Service used for peer discovery and per-pod DNS.
*/}}
{{- define "mediaserver.headlessServiceName" -}}
{{- printf "%s-headless" (include "mediaserver.fullname" .) }}
{{- end }}

{{/*
Fully qualified DNS name of the headless Service,
<fullname>-headless.<namespace>.svc.<clusterDomain>. It resolves to the addresses of all
pods, ready or not; pod N is reachable at <fullname>-N.<this name>. The app does not read
it: the chart builds each node's MEDIASERVER_INTERNAL_URL from it.
*/}}
{{- define "mediaserver.headlessServiceFqdn" -}}
{{- printf "%s.%s.svc.%s" (include "mediaserver.headlessServiceName" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/*
How peers reach this node (MEDIASERVER_INTERNAL_URL): its own name under the headless
Service, http://<pod>.<headless>.<namespace>.svc.<clusterDomain>:<port>. $(NODE_NAME) is
expanded by Kubernetes from the env entry defined before it.
*/}}
{{- define "mediaserver.internalUrl" -}}
{{- printf "http://$(NODE_NAME).%s:%d" (include "mediaserver.headlessServiceFqdn" .) (int .Values.containerPort) }}
{{- end }}

{{/*
This node's own public URL (MEDIASERVER_NODE_URL) from publicUrlTemplate: "{pod}" becomes
$(NODE_NAME), the pod's name, expanded by Kubernetes. Listeners of the streams the node
relays are redirected there; the links it hands out use config.MEDIASERVER_PUBLIC_URL,
the site's. Empty when no template is set.
*/}}
{{- define "mediaserver.nodeUrl" -}}
{{- .Values.publicUrlTemplate | replace "{pod}" "$(NODE_NAME)" | trimSuffix "/" }}
{{- end }}

{{/*
Container image reference.
*/}}
{{- define "mediaserver.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
The data directory inside the container (MEDIASERVER_DATA_DIR).
*/}}
{{- define "mediaserver.dataDir" -}}
/var/lib/mediaserver
{{- end }}

{{/*
Where the JWT key pair is mounted.
*/}}
{{- define "mediaserver.jwtDir" -}}
/etc/mediaserver/jwt
{{- end }}

{{/*
Name of the Secret holding the secret settings (envFrom).
*/}}
{{- define "mediaserver.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "mediaserver.fullname" . }}
{{- end }}
{{- end }}

{{/*
Whether a JWT key pair is configured ("true" or "").
*/}}
{{- define "mediaserver.jwtEnabled" -}}
{{- if or .Values.jwt.existingSecret (and .Values.jwt.privateKey .Values.jwt.publicKey) }}true{{ end }}
{{- end }}

{{/*
Name of the Secret holding private.pem / public.pem.
*/}}
{{- define "mediaserver.jwtSecretName" -}}
{{- if .Values.jwt.existingSecret }}
{{- .Values.jwt.existingSecret }}
{{- else }}
{{- printf "%s-jwt" (include "mediaserver.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Render a setting value as an environment variable string. Helm reads numbers in
values as float64, so 10000 would otherwise print as "10000" but 1000000 as "1e+06".
*/}}
{{- define "mediaserver.envValue" -}}
{{- if and (kindIs "float64" .) (eq . (float64 (int64 .))) }}
{{- int64 . | toString }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
Validate the values; included by the StatefulSet so that a bad configuration fails
`helm install` / `helm template` with one clear message.
*/}}
{{- define "mediaserver.validate" -}}
{{- $chartSet := list "NODE_NAME" "MEDIASERVER_INTERNAL_URL" "MEDIASERVER_DATA_DIR" "JWT_PRIVATE_KEY_PATH" "JWT_PUBLIC_KEY_PATH" }}
{{- $secretKeys := list "DATABASE_URL" "REDIS_URL" "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" "STREAM_KEY_SECRET" "RELAY_SERVICE_TOKEN" "METRICS_TOKEN" }}
{{- range $key, $value := .Values.config }}
{{- if has $key $chartSet }}
{{- fail (printf "config.%s: this variable is set by the chart itself; remove it from config" $key) }}
{{- end }}
{{- if eq $key "MEDIASERVER_NODE_URL" }}
{{- fail "config.MEDIASERVER_NODE_URL: every pod needs a URL of its own, which one ConfigMap cannot give; set publicUrlTemplate (e.g. https://{pod}.radio.example.com) and the chart renders it per pod" }}
{{- end }}
{{- if has $key $secretKeys }}
{{- fail (printf "config.%s: this is a credential; set it under secrets.%s (or in secrets.existingSecret) instead of config" $key $key) }}
{{- end }}
{{- end }}
{{- if contains "{pod}" (toString .Values.config.MEDIASERVER_PUBLIC_URL) }}
{{- fail (printf "config.MEDIASERVER_PUBLIC_URL %q is the site's URL, the same for every pod, in every link a node hands out (play URLs, RSS feeds, enclosures): a link naming one pod breaks when that pod goes. A per-pod URL belongs in publicUrlTemplate" (toString .Values.config.MEDIASERVER_PUBLIC_URL)) }}
{{- end }}
{{- if or (and .Values.jwt.privateKey (not .Values.jwt.publicKey)) (and .Values.jwt.publicKey (not .Values.jwt.privateKey)) }}
{{- fail "jwt: set both jwt.privateKey and jwt.publicKey (or jwt.existingSecret with private.pem and public.pem)" }}
{{- end }}
{{- with .Values.publicUrlTemplate }}
{{- if not (contains "{pod}" .) }}
{{- fail (printf "publicUrlTemplate %q must contain {pod} (the pod's name), e.g. https://{pod}.radio.example.com: every node needs its own public URL (the site's URL goes in config.MEDIASERVER_PUBLIC_URL)" .) }}
{{- end }}
{{- if not (or (hasPrefix "http://" .) (hasPrefix "https://" .)) }}
{{- fail (printf "publicUrlTemplate %q must be an absolute http(s) URL, e.g. https://{pod}.radio.example.com" .) }}
{{- end }}
{{- end }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- $missing := list }}
{{- if not .Values.secrets.existingSecret }}
{{- range $key := list "DATABASE_URL" "REDIS_URL" "STREAM_KEY_SECRET" "RELAY_SERVICE_TOKEN" }}
{{- if not (index $.Values.secrets $key) }}
{{- $missing = append $missing (printf "secrets.%s" $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not (include "mediaserver.jwtEnabled" .) }}
{{- $missing = append $missing "jwt.existingSecret (or jwt.privateKey + jwt.publicKey)" }}
{{- end }}
{{- if not .Values.config.MEDIASERVER_PUBLIC_URL }}
{{- $missing = append $missing "config.MEDIASERVER_PUBLIC_URL (the site, e.g. https://radio.example.com)" }}
{{- end }}
{{- if not .Values.publicUrlTemplate }}
{{- $missing = append $missing "publicUrlTemplate (each node, e.g. https://{pod}.radio.example.com)" }}
{{- end }}
{{- if $missing }}
{{- fail (printf "replicaCount=%d: every node must share the same database, Redis (membership and stream ownership), JWT key pair, STREAM_KEY_SECRET and RELAY_SERVICE_TOKEN, and needs two public URLs: the site's (config.MEDIASERVER_PUBLIC_URL, served by any pod: the play URLs, RSS feeds and enclosures nodes hand out start with it, so they must not name a pod that may go away) and its own (publicUrlTemplate: listeners of a stream are redirected to the node that relays it, so that URL must reach that very pod). These are not set: %s. Provide them inline, or name existing Secrets with secrets.existingSecret (keys DATABASE_URL, REDIS_URL, STREAM_KEY_SECRET, RELAY_SERVICE_TOKEN) and jwt.existingSecret (keys private.pem, public.pem); or run a single node with --set replicaCount=1." (int .Values.replicaCount) (join ", " $missing)) }}
{{- end }}
{{- end }}
{{- end }}
