{{/* ---------------------------------------------------------------------------------------
Names and labels
--------------------------------------------------------------------------------------- */}}

{{- define "weir.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "weir.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>"; call with (dict "root" $ "component" "api"). */}}
{{- define "weir.componentName" -}}
{{- printf "%s-%s" (include "weir.fullname" .root | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "weir.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "weir.labels" -}}
helm.sh/chart: {{ include "weir.chart" . }}
app.kubernetes.io/name: {{ include "weir.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: weir
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component; call with (dict "root" $ "component" "api"). */}}
{{- define "weir.componentLabels" -}}
{{ include "weir.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "weir.selectorLabels" -}}
app.kubernetes.io/name: {{ include "weir.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "weir.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "weir.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "weir.componentName" (dict "root" . "component" "operator")) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------
Kafka: the single source of the values the consumer env and the KEDA trigger share.
--------------------------------------------------------------------------------------- */}}

{{- define "weir.kafka.strimziClusterName" -}}
{{- default (printf "%s-kafka" (include "weir.fullname" .)) .Values.kafka.strimzi.clusterName -}}
{{- end -}}

{{- define "weir.kafka.bootstrapServers" -}}
{{- if .Values.kafka.strimzi.enabled -}}
{{- printf "%s-kafka-bootstrap.%s.svc:9092" (include "weir.kafka.strimziClusterName" .) .Release.Namespace -}}
{{- else -}}
{{- required "kafka.externalBootstrapServers is required when kafka.strimzi.enabled is false" .Values.kafka.externalBootstrapServers -}}
{{- end -}}
{{- end -}}

{{- define "weir.kafka.topic" -}}{{ .Values.topic.name }}{{- end -}}
{{- define "weir.kafka.consumerGroup" -}}{{ .Values.consumer.group }}{{- end -}}
{{- define "weir.kafka.offsetReset" -}}{{ .Values.consumer.autoOffsetReset }}{{- end -}}

{{- define "weir.kafka.saslSecretName" -}}
{{- default (printf "%s-credentials" (include "weir.fullname" .)) .Values.kafka.sasl.existingSecret -}}
{{- end -}}

{{/* Name of the Topic custom resource for the events stream (DNS-1123: dots are fine). */}}
{{- define "weir.topicResourceName" -}}
{{- include "weir.componentName" (dict "root" . "component" "events") -}}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------
ClickHouse
--------------------------------------------------------------------------------------- */}}

{{- define "weir.clickhouse.installationName" -}}
{{- include "weir.fullname" . | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "weir.clickhouse.keeperName" -}}
{{- printf "%s-keeper" (include "weir.clickhouse.installationName" .) -}}
{{- end -}}

{{- define "weir.clickhouse.url" -}}
{{- if .Values.clickhouse.altinity.enabled -}}
{{- printf "http://clickhouse-%s.%s.svc:8123" (include "weir.clickhouse.installationName" .) .Release.Namespace -}}
{{- else -}}
{{- required "clickhouse.externalUrl is required when clickhouse.altinity.enabled is false" .Values.clickhouse.externalUrl -}}
{{- end -}}
{{- end -}}

{{- define "weir.clickhouse.cluster" -}}
{{- if .Values.clickhouse.altinity.enabled -}}
{{- .Values.clickhouse.altinity.clusterName -}}
{{- else -}}
{{- .Values.clickhouse.cluster -}}
{{- end -}}
{{- end -}}

{{- define "weir.clickhouse.secretName" -}}
{{- default (printf "%s-credentials" (include "weir.fullname" .)) .Values.clickhouse.auth.existingSecret -}}
{{- end -}}

{{/* True when the chart must create its credentials Secret. */}}
{{- define "weir.createSecret" -}}
{{- if or (not .Values.clickhouse.auth.existingSecret) (and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.existingSecret)) -}}
true
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------
Pod pieces
--------------------------------------------------------------------------------------- */}}

{{/* Graceful drain: the pod may not be killed before preStop + the process's own flush. */}}
{{- define "weir.terminationGracePeriodSeconds" -}}
{{- $root := .root -}}
{{- $drain := add (int (ceil $root.Values.config.shutdownGraceSeconds)) (int .values.preStopSleepSeconds) -}}
{{- if kindIs "invalid" .values.terminationGracePeriodSeconds -}}
{{- add $drain 5 -}}
{{- else if lt (int .values.terminationGracePeriodSeconds) (int $drain) -}}
{{- fail (printf "%s.terminationGracePeriodSeconds (%d) must be >= config.shutdownGraceSeconds + preStopSleepSeconds (%d)" .component (int .values.terminationGracePeriodSeconds) (int $drain)) -}}
{{- else -}}
{{- .values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{- define "weir.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{- define "weir.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext -}}
{{- end -}}

{{/* /tmp is the only writable path (readOnlyRootFilesystem); WEIR_DATA_DIR lives under it. */}}
{{- define "weir.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "weir.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end -}}

{{/* The pod template of the api, consumer and operator Deployments: one image running
`weir <args>`, the restricted security contexts, a writable /tmp only, the common env, and the
scheduling values of the component. Call with
  (dict "root" $ "component" "api" "values" .Values.api "args" (list "api")
        "container" "weir.api.container" "env" "weir.env.api")
"container" names a template with the container's ports and probes; "env" (optional) one with the
component's env, placed between the common env and <component>.extraEnv; "serviceAccountName"
(optional) mounts that account's token, which no other pod gets; "volumes" (optional) names a
template with the component's own volumes, "mounts" one with their volumeMounts. */}}
{{- define "weir.podTemplate" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $ctx := dict "root" $root "component" .component -}}
metadata:
  labels:
    {{- include "weir.selectorLabels" $ctx | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- /* Roll the pods when the chart-made credentials change. */}}
    checksum/credentials: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .serviceAccountName }}
  serviceAccountName: {{ . }}
  {{- end }}
  automountServiceAccountToken: {{ not (empty .serviceAccountName) }}
  terminationGracePeriodSeconds: {{ include "weir.terminationGracePeriodSeconds" (dict "root" $root "component" .component "values" $v) }}
  securityContext:
    {{- include "weir.podSecurityContext" $root | nindent 4 }}
  containers:
    - name: {{ .component }}
      image: {{ include "weir.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: {{ toJson .args }}
      {{- include .container $root | nindent 6 }}
      env:
        {{- include "weir.env.common" $ctx | nindent 8 }}
        {{- with .env }}
        {{- include . $root | nindent 8 }}
        {{- end }}
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- if gt (int $v.preStopSleepSeconds) 0 }}
      lifecycle:
        preStop:
          {{- /* Keep serving while endpoints controllers and load balancers drop the pod. */}}
          sleep:
            seconds: {{ $v.preStopSleepSeconds }}
      {{- end }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- include "weir.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        {{- include "weir.tmpVolumeMount" $root | nindent 8 }}
        {{- with .mounts }}
        {{- with include . $root }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- end }}
  volumes:
    {{- include "weir.tmpVolume" $root | nindent 4 }}
    {{- with .volumes }}
    {{- with include . $root }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- end }}
  {{- range $key := list "nodeSelector" "tolerations" "affinity" "topologySpreadConstraints" }}
  {{- with get $v $key }}
  {{ $key }}:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- end }}
{{- end -}}

{{/* Env every Weir process reads; call with (dict "root" $ "component" "api"). */}}
{{- define "weir.env.common" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
- name: WEIR_LOG_LEVEL
  value: {{ $v.config.logLevel | quote }}
- name: WEIR_LOG_FORMAT
  value: {{ $v.config.logFormat | quote }}
- name: WEIR_SHUTDOWN_GRACE_SECONDS
  value: {{ $v.config.shutdownGraceSeconds | quote }}
- name: WEIR_STREAM_BACKEND
  value: kafka
- name: WEIR_STORE_BACKEND
  value: clickhouse
- name: WEIR_DATA_DIR
  value: /tmp/weir-data
- name: WEIR_HOST
  value: "0.0.0.0"
- name: WEIR_PORT
  value: "8080"
- name: WEIR_METRICS_PORT
  value: "9100"
- name: WEIR_KAFKA_BOOTSTRAP_SERVERS
  value: {{ include "weir.kafka.bootstrapServers" $root | quote }}
- name: WEIR_KAFKA_TOPIC
  value: {{ include "weir.kafka.topic" $root | quote }}
- name: WEIR_KAFKA_DLQ_TOPIC
  value: {{ $v.topic.dlqName | quote }}
- name: WEIR_KAFKA_SECURITY_PROTOCOL
  value: {{ $v.kafka.securityProtocol | quote }}
{{- if $v.kafka.sasl.mechanism }}
- name: WEIR_KAFKA_SASL_MECHANISM
  value: {{ $v.kafka.sasl.mechanism | quote }}
- name: WEIR_KAFKA_SASL_USERNAME
  value: {{ $v.kafka.sasl.username | quote }}
- name: WEIR_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "weir.kafka.saslSecretName" $root }}
      key: {{ $v.kafka.sasl.passwordKey }}
{{- end }}
- name: WEIR_CLICKHOUSE_URL
  value: {{ include "weir.clickhouse.url" $root | quote }}
- name: WEIR_CLICKHOUSE_USER
  value: {{ $v.clickhouse.user | quote }}
- name: WEIR_CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "weir.clickhouse.secretName" $root }}
      key: {{ $v.clickhouse.auth.passwordKey }}
- name: WEIR_CLICKHOUSE_DATABASE
  value: {{ $v.table.database | quote }}
{{- with include "weir.clickhouse.cluster" $root }}
- name: WEIR_CLICKHOUSE_CLUSTER
  value: {{ . | quote }}
{{- end }}
- name: WEIR_TABLE
  value: {{ $v.table.name | quote }}
- name: WEIR_TTL_DAYS
  value: {{ $v.table.ttlDays | quote }}
{{ include "weir.env.otel" . }}
{{- with $v.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "weir.env.otel" -}}
{{- $otel := .root.Values.otel -}}
- name: OTEL_SERVICE_NAME
  value: {{ printf "weir-%s" .component | quote }}
{{- if $otel.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ required "otel.endpoint is required when otel.enabled" $otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $otel.protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $otel.samplerRatio | quote }}
{{- with $otel.resourceAttributes }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ . | quote }}
{{- end }}
{{- else }}
- name: OTEL_SDK_DISABLED
  value: "true"
{{- end }}
{{- end -}}

{{/* API-only env: keys, quotas, CORS and the producer's bounds. */}}
{{- define "weir.env.api" -}}
{{- $api := .Values.api -}}
{{- if $api.keys.existingSecret -}}
- name: WEIR_API_KEYS_FILE
  value: {{ include "weir.api.keysFile" . | quote }}
{{ end -}}
- name: WEIR_API_OPEN
  value: {{ $api.keys.open | quote }}
- name: WEIR_KEY_RATE
  value: {{ $api.quota.rate | quote }}
- name: WEIR_KEY_BURST
  value: {{ $api.quota.burst | int64 | quote }}
{{- with $api.corsOrigins }}
- name: WEIR_API_CORS_ORIGINS
  value: {{ toJson . | quote }}
{{- end }}
- name: WEIR_PRODUCE_TIMEOUT_SECONDS
  value: {{ .Values.api.producer.timeoutSeconds | quote }}
- name: WEIR_PRODUCER_LINGER_MS
  value: {{ .Values.api.producer.lingerMs | int64 | quote }}
- name: WEIR_PRODUCER_MAX_PENDING
  value: {{ .Values.api.producer.maxPending | int64 | quote }}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------
API keys: a Secret made by the user (existing-secret pattern) holding the keys file of
`weir keys`, mounted read-only into the api pods only. Exactly one of existingSecret and open:
neither would leave the api refusing to start on 0.0.0.0, both is ambiguous.
--------------------------------------------------------------------------------------- */}}

{{- define "weir.api.keys.validate" -}}
{{- $keys := .Values.api.keys -}}
{{- if and $keys.existingSecret $keys.open -}}
{{- fail "api.keys: set existingSecret or open, not both (with keys the api is not open)" -}}
{{- end -}}
{{- if not (or $keys.existingSecret $keys.open) -}}
{{- fail "api.keys: set api.keys.existingSecret to a Secret holding the keys file of `weir keys` (charts/weir/README.md, section API keys), or api.keys.open=true to let anyone who reaches the api write and read" -}}
{{- end -}}
{{- end -}}

{{- define "weir.api.keysDir" -}}/etc/weir/keys{{- end -}}
{{- define "weir.api.keysFile" -}}{{ include "weir.api.keysDir" . }}/keys.json{{- end -}}

{{- define "weir.api.volumes" -}}
{{- if .Values.api.keys.existingSecret -}}
- name: api-keys
  secret:
    secretName: {{ .Values.api.keys.existingSecret }}
    {{- /* Digests only, so readable whatever podSecurityContext.fsGroup is. */}}
    defaultMode: 0444
    items:
      - key: {{ .Values.api.keys.secretKey }}
        path: keys.json
{{- end }}
{{- end -}}

{{- define "weir.api.volumeMounts" -}}
{{- if .Values.api.keys.existingSecret -}}
- name: api-keys
  mountPath: {{ include "weir.api.keysDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* Consumer-only env: the same helpers feed the KEDA trigger (consumer/scaledobject.yaml). */}}
{{- define "weir.env.consumer" -}}
{{- $v := .Values -}}
- name: WEIR_KAFKA_CONSUMER_GROUP
  value: {{ include "weir.kafka.consumerGroup" . | quote }}
- name: WEIR_KAFKA_AUTO_OFFSET_RESET
  value: {{ include "weir.kafka.offsetReset" . | quote }}
- name: WEIR_BATCH_MAX_EVENTS
  value: {{ $v.consumer.batch.maxEvents | quote }}
- name: WEIR_BATCH_MAX_BYTES
  value: {{ $v.consumer.batch.maxBytes | int64 | quote }}
- name: WEIR_BATCH_MAX_SECONDS
  value: {{ $v.consumer.batch.maxSeconds | quote }}
{{- end -}}

{{/* Consumer replica bounds: a consumer owns whole partitions, so more would idle. */}}
{{- define "weir.consumer.validate" -}}
{{- $partitions := int .Values.topic.partitions -}}
{{- $c := .Values.consumer -}}
{{- $bounds := dict -}}
{{- if not (or (include "weir.keda.active" .) $c.autoscaling.enabled) -}}
{{- $_ := set $bounds "consumer.replicas" $c.replicas -}}
{{- end -}}
{{- if $c.keda.enabled -}}
{{- $_ := set $bounds "consumer.keda.maxReplicaCount" $c.keda.maxReplicaCount -}}
{{- if gt (int $c.keda.minReplicaCount) (int $c.keda.maxReplicaCount) -}}
{{- fail "consumer.keda.minReplicaCount must be <= consumer.keda.maxReplicaCount" -}}
{{- end -}}
{{- end -}}
{{- if and $c.autoscaling.enabled (not (include "weir.keda.active" .)) -}}
{{- $_ := set $bounds "consumer.autoscaling.maxReplicas" $c.autoscaling.maxReplicas -}}
{{- if gt (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas) -}}
{{- fail "consumer.autoscaling.minReplicas must be <= consumer.autoscaling.maxReplicas" -}}
{{- end -}}
{{- end -}}
{{- range $key := keys $bounds | sortAlpha -}}
{{- if gt (int (get $bounds $key)) $partitions -}}
{{- fail (printf "%s (%d) must be <= topic.partitions (%d): a consumer owns whole partitions" $key (int (get $bounds $key)) $partitions) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* KEDA's spelling of the SASL mechanism the consumer uses. */}}
{{- define "weir.kafka.kedaSaslMode" -}}
{{- $modes := dict "PLAIN" "plaintext" "SCRAM-SHA-256" "scram_sha256" "SCRAM-SHA-512" "scram_sha512" "OAUTHBEARER" "oauthbearer" "GSSAPI" "gssapi" -}}
{{- $mechanism := upper .Values.kafka.sasl.mechanism -}}
{{- if not (hasKey $modes $mechanism) -}}
{{- fail (printf "kafka.sasl.mechanism %q is not one KEDA supports (%s)" .Values.kafka.sasl.mechanism (keys $modes | sortAlpha | join ", ")) -}}
{{- end -}}
{{- get $modes $mechanism -}}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------
Custom resources of other operators render only when their API is served (installed as their
own releases first, see README.md). "true" or empty.
--------------------------------------------------------------------------------------- */}}

{{- define "weir.keda.active" -}}
{{- if and .Values.consumer.keda.enabled (.Capabilities.APIVersions.Has "keda.sh/v1alpha1") -}}true{{- end -}}
{{- end -}}

{{- define "weir.strimzi.active" -}}
{{- if and .Values.kafka.strimzi.enabled (.Capabilities.APIVersions.Has "kafka.strimzi.io/v1beta2") -}}true{{- end -}}
{{- end -}}

{{- define "weir.altinity.active" -}}
{{- if and .Values.clickhouse.altinity.enabled (.Capabilities.APIVersions.Has "clickhouse.altinity.com/v1") (.Capabilities.APIVersions.Has "clickhouse-keeper.altinity.com/v1") -}}true{{- end -}}
{{- end -}}

{{- define "weir.serviceMonitor.active" -}}
{{- if and .Values.metrics.serviceMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{/* Topic/Table: their CRDs ship in crds/, so Helm installs them before rendering. Only with the
operator, which reconciles them. */}}
{{- define "weir.resources.active" -}}
{{- if and .Values.operator.enabled .Values.operator.createResources (.Capabilities.APIVersions.Has "weir.dev/v1alpha1") -}}true{{- end -}}
{{- end -}}

{{/* The migrate Job (`weir migrate`) owns the schema and the topics exactly when no operator does. */}}
{{- define "weir.migrateJob.active" -}}
{{- if not .Values.operator.enabled -}}true{{- end -}}
{{- end -}}
