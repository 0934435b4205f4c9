"""Checks of the Helm chart charts/mediaserver that need no Helm binary.

Helm is not available on the development machines, so these tests look at the chart
as files: Chart.yaml and values.yaml, the templates as text (every `.Values` path they
use exists in values.yaml, block keywords are balanced, manifests declare apiVersion
and kind), the Grafana dashboard JSON (every panel queries Prometheus, only metrics
the app exports) and the environment variable names the chart hands the app.

When a `helm` binary happens to be on PATH, or else the `helm-python-sdk` package (Helm's
Go SDK behind ctypes, a 75 MB wheel kept out of the test dependencies) is importable, the
last tests also render and lint the chart with it; otherwise they are skipped.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mediaserver.config import ENVIRONMENT, load_settings

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "mediaserver"
TEMPLATES = CHART / "templates"
DASHBOARD = CHART / "files" / "dashboard.json"

# The settings the app reads (mediaserver/config.py); the chart may use no others.
APP_ENV = {
    "DATABASE_URL",
    "REDIS_URL",
    "MEDIASERVER_DATA_DIR",
    "MEDIASERVER_PUBLIC_URL",
    "STORAGE_URL",
    "S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "JWT_PRIVATE_KEY_PATH",
    "JWT_PUBLIC_KEY_PATH",
    "JWT_ISSUER",
    "STREAM_KEY_SECRET",
    "RELAY_SERVICE_TOKEN",
    "METRICS_TOKEN",
    "RATE_LIMIT_ENABLED",
    "RATE_LIMIT_METADATA_PER_MINUTE",
    "RATE_LIMIT_WRITE_PER_MINUTE",
    "RATE_LIMIT_STREAMING_PER_MINUTE",
    "RATE_LIMIT_LOGIN_PER_EMAIL_PER_MINUTE",
    "RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE",
    "HLS_SEGMENT_SECONDS",
    "NODE_NAME",
    "MEDIASERVER_INTERNAL_URL",
    "MEDIASERVER_NODE_URL",
    "CLUSTER_LEASE_SECONDS",
    "RELAY_CONNECT_WAIT_SECONDS",
    "CORS_ALLOW_ORIGINS",
    "LOG_LEVEL",
    "TRUST_FORWARDED_FOR",
    "TRUSTED_PROXIES",
    "RATE_LIMIT_LOGIN_FAILURES_PER_EMAIL_PER_HOUR",
    "SMTP_URL",
    "MAIL_FROM",
    "PASSWORD_RESET_TTL_MINUTES",
    "REQUIRE_VERIFIED_EMAIL",
    "PAYMENT_PROVIDER",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "DOMAIN_VERIFIER",
    "DNS_RESOLVER",
    "INGEST_PORT",
}
SECRET_ENV = {
    "DATABASE_URL",
    "REDIS_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "STREAM_KEY_SECRET",
    "RELAY_SERVICE_TOKEN",
    "METRICS_TOKEN",
    "SMTP_URL",  # its password is in the URL
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
}
# Set by the StatefulSet itself, never through the ConfigMap/Secret (MEDIASERVER_NODE_URL,
# one per pod, from publicUrlTemplate).
CHART_SET_ENV = {
    "NODE_NAME",
    "MEDIASERVER_INTERNAL_URL",
    "MEDIASERVER_NODE_URL",
    "MEDIASERVER_DATA_DIR",
    "JWT_PRIVATE_KEY_PATH",
    "JWT_PUBLIC_KEY_PATH",
    "INGEST_PORT",  # from ingest.enabled/ingest.port, with the container and Service ports
}
# Shared state every node needs when replicaCount > 1.
MULTI_NODE_REQUIRED = {"DATABASE_URL", "REDIS_URL", "STREAM_KEY_SECRET", "RELAY_SERVICE_TOKEN"}

# Metrics the app exports (prometheus_client default process collector + ours).
KNOWN_METRICS = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "mediaserver_listeners",
    "mediaserver_listeners_dropped_total",
    "mediaserver_listening_seconds_bucket",
    "mediaserver_cluster_members",
    "mediaserver_cluster_streams_owned",
    "mediaserver_cluster_takeovers_total",
    "mediaserver_cluster_lease_renew_failures_total",
}

EXPECTED_TEMPLATES = {
    "_helpers.tpl": None,
    "NOTES.txt": None,
    "statefulset.yaml": [("apps/v1", "StatefulSet")],
    "service-headless.yaml": [("v1", "Service")],
    "service.yaml": [("v1", "Service")],
    "service-pods.yaml": [("v1", "Service")],
    "configmap.yaml": [("v1", "ConfigMap")],
    "secret.yaml": [("v1", "Secret"), ("v1", "Secret")],
    "pdb.yaml": [("policy/v1", "PodDisruptionBudget")],
    "servicemonitor.yaml": [("monitoring.coreos.com/v1", "ServiceMonitor")],
    "grafana-dashboard.yaml": [("v1", "ConfigMap")],
}

TEMPLATE_COMMENT = re.compile(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", re.S)
VALUES_REF = re.compile(r"\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
ENV_TOKEN = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


def load_yaml(path: Path):
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def template_files() -> list[Path]:
    return sorted(p for p in TEMPLATES.iterdir() if p.is_file())


def template_text(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def strip_comments(text: str) -> str:
    return TEMPLATE_COMMENT.sub("", text)


@pytest.fixture(scope="module")
def chart() -> dict:
    return load_yaml(CHART / "Chart.yaml")


@pytest.fixture(scope="module")
def values() -> dict:
    return load_yaml(CHART / "values.yaml")


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- Chart.yaml


def test_chart_yaml_metadata(chart):
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "mediaserver"
    assert chart["version"] == "0.1.0"
    # Quoted in Chart.yaml: a string, not a float.
    assert chart["appVersion"] == "0.1.0"
    assert isinstance(chart["appVersion"], str)
    assert chart["type"] == "application"
    assert isinstance(chart["description"], str) and chart["description"].strip()


def test_chart_files_present():
    for name in EXPECTED_TEMPLATES:
        assert (TEMPLATES / name).is_file(), f"missing templates/{name}"
    assert DASHBOARD.is_file()
    assert (CHART / "README.md").is_file()
    assert (CHART / "values.yaml").is_file()


def test_no_unexpected_templates():
    names = {p.name for p in template_files()}
    assert names == set(EXPECTED_TEMPLATES), names ^ set(EXPECTED_TEMPLATES)


# --------------------------------------------------------------------------- values.yaml


def test_values_defaults(values):
    assert values["image"]["repository"] == "mediaserver"
    assert values["image"]["tag"] == ""  # empty -> .Chart.AppVersion
    assert values["image"]["pullPolicy"] in {"IfNotPresent", "Always", "Never"}
    assert values["replicaCount"] == 3
    assert values["containerPort"] == 8080
    assert values["podManagementPolicy"] == "Parallel"
    assert values["terminationGracePeriodSeconds"] == 45
    # SIGTERM comes after the preStop pause; then ~3 s of handover and 30 s of requests.
    assert values["preStopSleepSeconds"] == 5
    assert values["terminationGracePeriodSeconds"] >= values["preStopSleepSeconds"] + 35
    assert values["lifecycle"] == {}
    assert values["publicUrlTemplate"] == ""
    assert values["podServices"] == {"enabled": True, "annotations": {}}
    assert values["extraVolumes"] == [] and values["extraVolumeMounts"] == []

    for section in ("requests", "limits"):
        assert set(values["resources"][section]) >= {"cpu", "memory"}, section

    assert values["service"]["type"] == "ClusterIP"
    assert values["service"]["port"] == 80

    assert values["podDisruptionBudget"]["enabled"] is True
    assert values["podDisruptionBudget"]["maxUnavailable"] == 1

    assert values["serviceMonitor"]["enabled"] is False
    assert values["serviceMonitor"]["interval"] == "15s"

    gd = values["grafanaDashboard"]
    assert gd["enabled"] is True
    assert gd["label"] == "grafana_dashboard"
    assert gd["labelValue"] == "1"  # the sidecar compares strings

    persistence = values["persistence"]
    assert persistence["enabled"] is False
    assert {"storageClass", "accessModes", "size"} <= set(persistence)

    assert isinstance(values["config"], dict)
    # Behind the ingress, per-IP limits count listeners; sized for HLS polling (README).
    assert values["config"]["TRUST_FORWARDED_FOR"] == "true"
    assert values["config"]["TRUSTED_PROXIES"] == ""
    assert values["config"]["RATE_LIMIT_STREAMING_PER_MINUTE"] == "10000"
    # The site's URL has no default (the chart asks for it with more than one node); the
    # cluster's timings keep the app's defaults.
    assert values["config"]["MEDIASERVER_PUBLIC_URL"] == ""
    assert values["config"]["CLUSTER_LEASE_SECONDS"] == ""
    assert values["config"]["RELAY_CONNECT_WAIT_SECONDS"] == ""
    # Production-safe: no payment or domain stub unless an operator names one.
    assert values["config"]["PAYMENT_PROVIDER"] == ""
    assert values["config"]["DOMAIN_VERIFIER"] == ""
    assert values["secrets"]["existingSecret"] == ""
    assert values["jwt"] == {"existingSecret": "", "privateKey": "", "publicKey": ""}

    assert values["podAnnotations"] == {}
    assert values["nodeSelector"] == {}
    assert values["tolerations"] == []
    assert values["affinity"] == {}
    assert values["podAntiAffinityPreset"] == "soft"

    sc = values["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert values["podSecurityContext"]["runAsNonRoot"] is True


def test_config_and_secrets_keys(values):
    config_keys = set(values["config"])
    secret_keys = set(values["secrets"]) - {"existingSecret"}
    assert config_keys <= APP_ENV, config_keys - APP_ENV
    assert secret_keys <= APP_ENV, secret_keys - APP_ENV
    # Credentials only in the Secret; chart-owned variables in neither.
    assert not config_keys & SECRET_ENV, config_keys & SECRET_ENV
    assert secret_keys == SECRET_ENV
    assert not (config_keys | secret_keys) & CHART_SET_ENV
    # Every setting the app reads is reachable: config, secrets, or set by the chart.
    assert config_keys | secret_keys | CHART_SET_ENV == APP_ENV, APP_ENV - (
        config_keys | secret_keys | CHART_SET_ENV
    )
    # Everything rendered into a ConfigMap must be a string or a scalar.
    for key, value in values["config"].items():
        assert isinstance(value, (str, int, float, bool)), key
    # No credential ships in the defaults.
    for key in secret_keys:
        assert values["secrets"][key] == "", key


def test_chart_names_only_settings_the_app_reads():
    unread = APP_ENV - set(ENVIRONMENT)
    assert not unread, unread


# --------------------------------------------------------------------------- templates


def _lookup(values: dict, dotted: str):
    node = values
    for part in dotted.strip(".").split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(part)
        node = node[part]
    return node


def test_values_references_exist(values):
    """Drift guard: every .Values.a.b.c used by a template is defined in values.yaml."""
    missing = []
    for path in template_files():
        for match in VALUES_REF.finditer(strip_comments(path.read_text(encoding="utf-8"))):
            try:
                _lookup(values, match.group(1))
            except KeyError:
                missing.append(f"{path.name}: .Values{match.group(1)}")
    assert not missing, "referenced but not in values.yaml:\n" + "\n".join(sorted(set(missing)))


def test_every_top_level_value_is_used(values):
    """The reverse drift guard: no dead top-level keys in values.yaml."""
    used = set()
    for path in template_files():
        for match in VALUES_REF.finditer(strip_comments(path.read_text(encoding="utf-8"))):
            used.add(match.group(1).strip(".").split(".")[0])
    unused = set(values) - used
    assert not unused, f"values.yaml keys no template uses: {sorted(unused)}"


def test_manifests_declare_api_version_and_kind():
    for name, expected in EXPECTED_TEMPLATES.items():
        if expected is None:
            continue
        text = strip_comments(template_text(name))
        api_versions = re.findall(r"^apiVersion:\s*(\S+)\s*$", text, re.M)
        kinds = re.findall(r"^kind:\s*(\S+)\s*$", text, re.M)
        assert api_versions, f"{name} declares no apiVersion"
        assert kinds, f"{name} declares no kind"
        assert list(zip(api_versions, kinds, strict=False)) == expected, name


@pytest.mark.parametrize("name", sorted(EXPECTED_TEMPLATES))
def test_template_actions_balanced(name):
    text = strip_comments(template_text(name))
    assert text.count("{{") == text.count("}}"), f"{name}: unbalanced {{{{ }}}}"
    actions = re.findall(r"\{\{-?\s*(.*?)\s*-?\}\}", text, re.S)
    depth = 0
    for action in actions:
        word = action.split(None, 1)[0] if action.split() else ""
        if word in {"if", "range", "with", "define", "block"}:
            depth += 1
        elif word == "end":
            depth -= 1
            assert depth >= 0, f"{name}: 'end' without an opening block"
    assert depth == 0, f"{name}: {depth} block(s) not closed"


def test_included_helpers_are_defined():
    helpers = template_text("_helpers.tpl")
    defined = set(re.findall(r'\{\{-?\s*define\s+"([^"]+)"', helpers))
    assert {
        "mediaserver.fullname",
        "mediaserver.labels",
        "mediaserver.selectorLabels",
    } <= defined
    for path in template_files():
        for used in re.findall(r'include\s+"([^"]+)"', path.read_text(encoding="utf-8")):
            assert used in defined, f"{path.name} includes undefined template {used!r}"


def test_all_objects_namespaced_and_labelled():
    for name, expected in EXPECTED_TEMPLATES.items():
        if expected is None:
            continue
        text = template_text(name)
        assert text.count('include "mediaserver.labels"') >= len(expected), name
        assert text.count("namespace:") >= len(expected), name


def test_statefulset_contract(values):
    text = template_text("statefulset.yaml")
    assert text.lstrip().startswith('{{- include "mediaserver.validate" . }}')
    assert 'serviceName: {{ include "mediaserver.headlessServiceName" . }}' in text
    assert "podManagementPolicy: {{ .Values.podManagementPolicy }}" in text
    # command: mediaserver serve --host 0.0.0.0 --port <containerPort>
    command = re.search(r"command:\n((?:\s+- .*\n)+)", text).group(1)
    assert [line.strip()[2:] for line in command.splitlines()] == [
        "mediaserver",
        "serve",
        "--host",
        "0.0.0.0",  # noqa: S104 (the chart binds all interfaces in the pod)
        "--port",
        "{{ .Values.containerPort | quote }}",
    ]
    assert re.search(
        r"- name: NODE_NAME\n\s+valueFrom:\n\s+fieldRef:\n\s+fieldPath: metadata.name", text
    )
    assert re.search(
        r'- name: MEDIASERVER_DATA_DIR\n\s+value: \{\{ include "mediaserver.dataDir"', text
    )
    # Peers reach a node under its own name; listeners are redirected to its own URL.
    # Both use $(NODE_NAME), so they must come after it in the env list.
    assert re.search(
        r'- name: MEDIASERVER_INTERNAL_URL\n\s+value: \{\{ include "mediaserver.internalUrl"',
        text,
    )
    assert re.search(
        r"\{\{- if \.Values\.publicUrlTemplate \}\}\n(?:\s+#.*\n)*\s+- name: MEDIASERVER_NODE_URL\n"
        r'\s+value: \{\{ include "mediaserver.nodeUrl"',
        text,
    )
    assert text.index("name: NODE_NAME") < text.index("name: MEDIASERVER_INTERNAL_URL")
    assert text.index("name: NODE_NAME") < text.index("name: MEDIASERVER_NODE_URL")
    # The site's URL comes from the ConfigMap alone, the same in every pod: the links
    # nodes hand out must outlive each pod.
    assert "name: MEDIASERVER_PUBLIC_URL" not in text
    helpers = template_text("_helpers.tpl")
    assert '"http://$(NODE_NAME).%s:%d"' in helpers
    assert 'replace "{pod}" "$(NODE_NAME)"' in helpers
    assert "/var/lib/mediaserver" in template_text("_helpers.tpl")
    assert "/etc/mediaserver/jwt" in template_text("_helpers.tpl")
    assert "configMapRef:" in text and "secretRef:" in text
    # Probes.
    assert re.search(r"livenessProbe:\n\s+httpGet:\n\s+path: /healthz\n\s+port: http", text)
    assert re.search(r"readinessProbe:\n\s+httpGet:\n\s+path: /readyz\n\s+port: http", text)
    # A pause before SIGTERM while the endpoints go, unless `lifecycle` replaces it.
    assert "{{- if .Values.lifecycle }}" in text
    assert "{{- else if gt (int .Values.preStopSleepSeconds) 0 }}" in text
    assert re.search(
        r"preStop:\n.*\n\s+sleep:\n\s+seconds: \{\{ int \.Values\.preStopSleepSeconds", text
    )
    assert 'command: ["sleep", {{ int .Values.preStopSleepSeconds | quote }}]' in text
    # Pods roll when the ConfigMap or Secret change.
    assert (
        'checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}'
        in text
    )
    assert (
        'checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}'
        in text
    )
    # Writable data dir and /tmp with a read-only root filesystem.
    assert "mountPath: /tmp" in text
    assert "volumeClaimTemplates:" in text
    assert text.count("emptyDir: {}") == 2
    assert "terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}" in text
    assert "podAntiAffinity:" in text and "preferredDuringSchedulingIgnoredDuringExecution" in text


def test_headless_service():
    text = template_text("service-headless.yaml")
    assert re.search(r"^\s+clusterIP: None$", text, re.M)
    assert re.search(r"^\s+publishNotReadyAddresses: true$", text, re.M)
    assert 'name: {{ include "mediaserver.headlessServiceName" . }}' in text
    helpers = template_text("_helpers.tpl")
    assert '"%s-headless"' in helpers
    assert '"%s.%s.svc.%s"' in helpers  # <headless>.<ns>.svc.<domain>, in internal URLs


def test_a_service_per_pod_for_its_public_host():
    text = template_text("service-pods.yaml")
    assert text.startswith("{{- if and .Values.publicUrlTemplate .Values.podServices.enabled }}")
    assert "{{- range $ordinal := until (int .Values.replicaCount) }}" in text
    assert 'name: {{ printf "%s-%d" $fullname $ordinal }}' in text
    assert 'statefulset.kubernetes.io/pod-name: {{ printf "%s-%d" $fullname $ordinal }}' in text
    # A stopping node still answers redirected listeners on its own URL during handover.
    assert re.search(r"^\s+publishNotReadyAddresses: true$", text, re.M)
    assert "mediaserver.io/service" not in text  # never scraped through these


def test_service_ports(values):
    text = template_text("service.yaml")
    assert "port: {{ .Values.service.port }}" in text
    assert "targetPort: http" in text
    assert "containerPort: {{ .Values.containerPort }}" in template_text("statefulset.yaml")


def test_pdb_and_servicemonitor():
    pdb = template_text("pdb.yaml")
    assert pdb.startswith("{{- if .Values.podDisruptionBudget.enabled }}")
    assert "maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}" in pdb

    sm = template_text("servicemonitor.yaml")
    assert sm.startswith("{{- if .Values.serviceMonitor.enabled }}")
    assert re.search(r"- port: http\n\s+path: /metrics", sm)
    assert "interval: {{ .Values.serviceMonitor.interval }}" in sm
    # Selects only the headless Service, so that each pod is scraped once.
    assert "mediaserver.io/service: headless" in sm
    assert "mediaserver.io/service: headless" in template_text("service-headless.yaml")
    assert "mediaserver.io/service" not in template_text("service.yaml")
    # With METRICS_TOKEN, the scrape sends it from the Secret the pods load it from.
    assert (
        "{{- if or .Values.secrets.METRICS_TOKEN .Values.serviceMonitor.metricsTokenInSecret }}"
        in sm
    )
    assert re.search(
        r"type: Bearer\n\s+credentials:\n"
        r"\s+name: \{\{ include \"mediaserver.secretName\" \. \}\}\n\s+key: METRICS_TOKEN",
        sm,
    )


def test_grafana_dashboard_configmap():
    text = template_text("grafana-dashboard.yaml")
    assert text.startswith("{{- if .Values.grafanaDashboard.enabled }}")
    assert '.Files.Get "files/dashboard.json"' in text
    assert (
        "{{ .Values.grafanaDashboard.label }}: {{ .Values.grafanaDashboard.labelValue | quote }}"
        in text
    )


def test_multi_node_validation_fails_clearly():
    helpers = template_text("_helpers.tpl")
    validate = helpers[helpers.index('define "mediaserver.validate"') :]
    assert "gt (int .Values.replicaCount) 1" in validate
    assert "fail" in validate
    assert ".Values.secrets.existingSecret" in validate
    assert '"mediaserver.jwtEnabled"' in validate
    for key in MULTI_NODE_REQUIRED:
        assert f'"{key}"' in validate, key
    # Each node needs its own public URL: a shared one would bounce redirects around;
    # and the site's, for the links nodes hand out.
    assert "{{- if not .Values.publicUrlTemplate }}" in validate
    assert "{{- if not .Values.config.MEDIASERVER_PUBLIC_URL }}" in validate
    assert 'contains "{pod}"' in validate
    assert "MEDIASERVER_INTERNAL_URL" in validate  # refused in config: the chart sets it
    assert 'eq $key "MEDIASERVER_NODE_URL"' in validate  # per pod: publicUrlTemplate
    jwt_enabled = helpers[helpers.index('define "mediaserver.jwtEnabled"') :]
    assert ".Values.jwt.existingSecret" in jwt_enabled.split("{{- end }}")[0]


# --------------------------------------------------------------------------- env names


def test_env_names_are_known(values):
    names = set()
    for path in template_files():
        names |= set(ENV_TOKEN.findall(strip_comments(path.read_text(encoding="utf-8"))))
    names |= set(values["config"])
    names |= set(values["secrets"]) - {"existingSecret"}
    for item in values.get("extraEnv") or []:
        names.add(item["name"])
    unknown = names - APP_ENV
    assert not unknown, f"env names the app does not read: {sorted(unknown)}"
    # The chart-owned variables are all set by the StatefulSet.
    sts = template_text("statefulset.yaml")
    for name in CHART_SET_ENV:
        assert f"- name: {name}" in sts, name


def test_secret_template_renders_from_values():
    text = template_text("secret.yaml")
    assert text.startswith("{{- if not .Values.secrets.existingSecret }}")
    assert 'omit .Values.secrets "existingSecret"' in text
    assert "b64enc" in text
    assert "private.pem:" in text and "public.pem:" in text
    cm = template_text("configmap.yaml")
    assert "range $key, $value := .Values.config" in cm


# --------------------------------------------------------------------------- dashboard

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (functions, keywords and labels removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = match.group(0)
        if expr[match.end() :].lstrip().startswith("("):
            continue  # a function call such as rate( or sum(
        if word.lower() in PROMQL_WORDS:
            continue
        if match.start() > 0 and (
            expr[match.start() - 1].isdigit() or expr[match.start() - 1] == "."
        ):
            continue  # exponent or fraction of a number literal
        names.add(word)
    return names


def test_metric_name_parser():
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, endpoint) (rate(http_request_duration_seconds_bucket{job=~"$job"}[5m])))'  # noqa: E501
    ) == {"http_request_duration_seconds_bucket"}
    assert metric_names('sum(rate(http_requests_total{code=~"5.."}[1m])) * 60') == {
        "http_requests_total"
    }
    assert metric_names("sum(a) by (pod) / on (pod) b_total") == {"a", "b_total"}


def all_panels(panels: list[dict]) -> list[dict]:
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(all_panels(panel.get("panels") or []))
    return out


def test_dashboard_shape(dashboard):
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["title"]
    assert dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = all_panels(dashboard["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]


def test_every_panel_queries_prometheus(dashboard):
    for panel in all_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        targets = panel.get("targets") or []
        assert targets, f"panel {panel['title']!r} has no target"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in targets:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel[
                "title"
            ]
            assert target["expr"].strip(), panel["title"]
            assert target["refId"], panel["title"]


def test_dashboard_metrics_are_exported_by_the_app(dashboard):
    used = set()
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets") or []:
            names = metric_names(target["expr"])
            assert names, f"no metric in {target['expr']!r}"
            assert names <= KNOWN_METRICS, (panel["title"], names - KNOWN_METRICS)
            used |= names
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = (
            variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        )
        inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query).group(1)
        assert metric_names(inner) <= KNOWN_METRICS, variable["name"]
    # Every metric the app exports for operators is on the dashboard.
    assert used == KNOWN_METRICS, KNOWN_METRICS - used


def test_dashboard_required_panels(dashboard):
    exprs = [t["expr"] for p in all_panels(dashboard["panels"]) for t in p.get("targets") or []]
    joined = "\n".join(exprs)

    def has(pattern: str) -> bool:
        return re.search(pattern, joined) is not None

    assert has(r"sum by \(endpoint\) \(rate\(http_requests_total\{[^}]*\}\[1m\]\)\) \* 60")
    assert has(r'http_requests_total\{[^}]*code=~"4\.\."')
    assert has(r'http_requests_total\{[^}]*code=~"5\.\."')
    assert has(r"histogram_quantile\(0\.50?, .*http_request_duration_seconds_bucket")
    assert has(r"histogram_quantile\(0\.99, .*http_request_duration_seconds_bucket")
    assert has(r"by \(pod\) \(rate\(process_cpu_seconds_total\{[^}]*\}\[1m\]\)\)")
    assert has(r"by \(pod\) \(process_resident_memory_bytes")
    assert has(r"sum by \(stream\) \(mediaserver_listeners\{")
    assert has(r"rate\(mediaserver_listeners_dropped_total\{[^}]*\}\[5m\]\)")
    # Ownership, per node (one pod = one node).
    assert has(r"by \(pod\) \(mediaserver_cluster_members\{")
    assert has(r"sum by \(pod\) \(mediaserver_cluster_streams_owned\{")
    assert has(r"by \(pod\) \(increase\(mediaserver_cluster_takeovers_total\{[^}]*\}\[5m\]\)\)")
    assert has(
        r"by \(pod\) \(increase\(mediaserver_cluster_lease_renew_failures_total\{[^}]*\}\[5m\]\)\)"
    )
    assert has(
        r"histogram_quantile\(0\.50?, sum by \(le\) \(rate\(mediaserver_listening_seconds_bucket"
    )
    # Request latency leaves out the .mp3 routes, whose requests last as long as listening.
    latency = [e for e in exprs if "http_request_duration_seconds_bucket" in e]
    assert latency and all('endpoint!~".*\\\\.mp3"' in e for e in latency), latency


# --------------------------------------------------------------------------- with helm

HELM = shutil.which("helm")
HELM_SDK = importlib.util.find_spec("helm_python") is not None
needs_helm = pytest.mark.skipif(
    HELM is None and not HELM_SDK, reason="neither a helm binary nor helm-python-sdk installed"
)

MULTI_NODE_VALUES = {
    "secrets": {
        "DATABASE_URL": "postgresql://media:pw@postgres:5432/media",
        "REDIS_URL": "redis://redis:6379/0",
        "STREAM_KEY_SECRET": "0123456789abcdef0123456789abcdef",
        "RELAY_SERVICE_TOKEN": "relay-token",
    },
    "jwt": {"existingSecret": "media-jwt"},
    "config": {
        "MEDIASERVER_PUBLIC_URL": "https://radio.example.com",
        "STORAGE_URL": "s3://bucket/prefix",
        "TRUSTED_PROXIES": "10.42.0.0/16",
    },
    "serviceMonitor": {"enabled": True},
    "persistence": {"enabled": True},
    "publicUrlTemplate": "https://{pod}.radio.example.com",
}


class RenderError(Exception):
    """`helm template` failed; the message holds Helm's (a `fail` in a template)."""


def render(values: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    """The manifests of `helm template media <chart> --namespace radio -f <values>`."""
    if HELM is not None:
        values_file = tmp_path / "values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        result = subprocess.run(
            [HELM, "template", "media", str(CHART), "--namespace", "radio", "-f", str(values_file)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RenderError(result.stderr)
        texts = [result.stdout]
    else:
        sdk = importlib.import_module("helm_python")
        with sdk.Chart.load(str(CHART)) as chart:
            try:
                rendered = chart.render(values, name="media", namespace="radio")
            except sdk.HelmError as exc:
                raise RenderError(str(exc)) from None
            texts = [text for name, text in rendered.items() if not name.endswith("NOTES.txt")]
    return [doc for text in texts for doc in yaml.safe_load_all(text) if doc]


def lint(values: dict[str, Any]) -> list[str]:
    """Problems `helm lint --strict` finds (warnings included)."""
    if HELM is not None:
        args = [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]
        result = subprocess.run(
            [HELM, "lint", "--strict", str(CHART), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return [] if result.returncode == 0 else [result.stdout + result.stderr]
    report = importlib.import_module("helm_python").lint(str(CHART), values, strict=True)
    warnings = [m["error"] for m in report["messages"] if m["severity"] >= 2]
    return [*report["errors"], *warnings]


@needs_helm
def test_helm_lint_single_node():
    assert lint({"replicaCount": 1}) == []


@needs_helm
def test_helm_template_refuses_multi_node_without_shared_state(tmp_path):
    with pytest.raises(RenderError) as info:
        render({}, tmp_path)
    for key in MULTI_NODE_REQUIRED:
        assert key in str(info.value), info.value
    assert "jwt.existingSecret" in str(info.value)
    assert "publicUrlTemplate" in str(info.value)
    assert "config.MEDIASERVER_PUBLIC_URL" in str(info.value)


@needs_helm
@pytest.mark.parametrize("missing", ["publicUrlTemplate", "MEDIASERVER_PUBLIC_URL"])
def test_helm_template_multi_node_needs_both_public_urls(missing, tmp_path):
    values = json.loads(json.dumps(MULTI_NODE_VALUES))
    if missing == "publicUrlTemplate":
        del values["publicUrlTemplate"]
    else:
        del values["config"]["MEDIASERVER_PUBLIC_URL"]
    with pytest.raises(RenderError) as info:
        render(values, tmp_path)
    message = str(info.value)
    not_set = re.search(r"These are not set: (.*?)\. Provide them", message)
    assert not_set is not None, message
    assert missing in not_set.group(1), message
    given = ({"publicUrlTemplate", "MEDIASERVER_PUBLIC_URL"} - {missing}).pop()
    assert given not in not_set.group(1), message


@needs_helm
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"publicUrlTemplate": "https://radio.example.com"}, "must contain {pod}"),
        ({"publicUrlTemplate": "{pod}.radio.example.com"}, "absolute http(s) URL"),
        (
            {"config": {"MEDIASERVER_PUBLIC_URL": "https://{pod}.radio.example.com"}},
            "is the site's URL, the same for every pod",
        ),
        (
            {"config": {"MEDIASERVER_NODE_URL": "https://node.radio.example.com"}},
            "set publicUrlTemplate",
        ),
        ({"config": {"MEDIASERVER_INTERNAL_URL": "http://x"}}, "set by the chart itself"),
    ],
)
def test_helm_template_refuses_a_bad_public_url(values, message, tmp_path):
    with pytest.raises(RenderError) as info:
        render({"replicaCount": 1, **values}, tmp_path)
    assert message in str(info.value)


@needs_helm
def test_helm_template_multi_node(tmp_path):
    docs = render(MULTI_NODE_VALUES, tmp_path)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("StatefulSet", "media-mediaserver") in kinds
    assert ("Service", "media-mediaserver-headless") in kinds
    assert ("ServiceMonitor", "media-mediaserver") in kinds
    assert ("PodDisruptionBudget", "media-mediaserver") in kinds
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["MEDIASERVER_INTERNAL_URL"]["value"] == (
        "http://$(NODE_NAME).media-mediaserver-headless.radio.svc.cluster.local:8080"
    )
    assert env["MEDIASERVER_NODE_URL"]["value"] == "https://$(NODE_NAME).radio.example.com"
    assert "MEDIASERVER_PUBLIC_URL" not in env  # the site's, from the ConfigMap
    assert env["JWT_PRIVATE_KEY_PATH"]["value"] == "/etc/mediaserver/jwt/private.pem"
    assert set(env) <= APP_ENV
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pre_stop = container["lifecycle"]["preStop"]
    assert pre_stop in ({"sleep": {"seconds": 5}}, {"exec": {"command": ["sleep", "5"]}})
    assert pod["terminationGracePeriodSeconds"] == 45
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    config = next(
        d for d in docs if d["kind"] == "ConfigMap" and "data" in d and "LOG_LEVEL" in d["data"]
    )
    assert config["data"]["TRUST_FORWARDED_FOR"] == "true"
    assert config["data"]["TRUSTED_PROXIES"] == "10.42.0.0/16"
    # One Service per pod, each selecting only its pod, for that pod's public host.
    per_pod = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for n in range(3):
        service = per_pod[f"media-mediaserver-{n}"]
        selector = service["spec"]["selector"]
        assert selector["statefulset.kubernetes.io/pod-name"] == f"media-mediaserver-{n}"
        assert service["spec"]["publishNotReadyAddresses"] is True
    assert "media-mediaserver-3" not in per_pod
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1


def pod_environment(docs: list[dict[str, Any]], pod_name: str) -> dict[str, str]:
    """The environment one pod's server sees: the ConfigMap and Secret (envFrom), then the
    container's `env`, with Kubernetes' $(NODE_NAME) expansion."""
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    environ: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            doc = next(
                d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name
            )
            environ.update(doc.get("data") or {})
        else:
            name = source["secretRef"]["name"]
            doc = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == name)
            environ.update({k: base64.b64decode(v).decode() for k, v in doc["data"].items()})
    for entry in container["env"]:
        if entry.get("valueFrom") == {"fieldRef": {"fieldPath": "metadata.name"}}:
            environ[entry["name"]] = pod_name
        else:
            environ[entry["name"]] = entry["value"].replace("$(NODE_NAME)", pod_name)
    return environ


@needs_helm
def test_helm_rendered_pod_is_a_node_of_the_site(tmp_path):
    """What the app makes of a pod's rendered environment: links name the site, redirects
    to this node name the pod's own host, peers reach it under the headless Service."""
    settings = load_settings(
        pod_environment(render(MULTI_NODE_VALUES, tmp_path), "media-mediaserver-1")
    )
    assert settings.node_name == "media-mediaserver-1"
    assert settings.base_url == "https://radio.example.com"
    assert settings.node_url == "https://media-mediaserver-1.radio.example.com"
    assert settings.peer_url == (
        "http://media-mediaserver-1.media-mediaserver-headless.radio.svc.cluster.local:8080"
    )
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.trust_forwarded_for is True


def test_push_ingest_is_off_by_default_and_gated_in_every_template(values):
    assert values["ingest"] == {"enabled": False, "port": 8000}
    for name in ("statefulset.yaml", "service.yaml"):
        text = (TEMPLATES / name).read_text(encoding="utf-8")
        gate = text.index("{{- if .Values.ingest.enabled }}")
        assert gate < text.index("name: ingest") < text.index("{{- end }}", gate), name
    sts = (TEMPLATES / "statefulset.yaml").read_text(encoding="utf-8")
    assert "- name: INGEST_PORT\n              value: {{ .Values.ingest.port | quote }}" in sts


@needs_helm
def test_helm_template_exposes_the_ingest_port(tmp_path):
    docs = render({"replicaCount": 1, "ingest": {"enabled": True, "port": 8010}}, tmp_path)
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["INGEST_PORT"] == "8010"
    assert {"name": "ingest", "containerPort": 8010, "protocol": "TCP"} in container["ports"]
    service = next(
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "media-mediaserver"
    )
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["ingest"]["port"] == 8010 and ports["ingest"]["targetPort"] == "ingest"
    off = render({"replicaCount": 1}, tmp_path)
    assert "INGEST_PORT" not in json.dumps(off)
