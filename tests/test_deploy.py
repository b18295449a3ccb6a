"""What the Docker image and the compose file promise, checked without a Docker engine."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from bot.config import Settings
from bot.container import Container
from bot.server import create_app
from tests.http_server import ServerThread

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_the_image_is_slim_non_root_and_checks_its_health() -> None:
    stage = final_stage()
    base = stage[0][1]
    assert re.fullmatch(r"python:3\.1[1-3]-slim", base), base
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert base.split(":")[1].split("-")[0] in ("3.11", "3.12", "3.13") and "<3.14" in python
    users = [args for word, args in stage if word == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    health = [args for word, args in stage if word == "HEALTHCHECK"]
    assert len(health) == 1 and "/healthz" in health[0] and "--interval" in health[0]
    exposed = [args for word, args in stage if word == "EXPOSE"]
    command = json.loads([args for word, args in stage if word == "CMD"][-1])
    assert exposed == ["3000"] and "--port 3000" in command[-1] and "--host 0.0.0.0" in command[-1]
    assert "csm-bot db upgrade" in command[-1]


def test_the_image_holds_every_package_the_project_ships() -> None:
    copied = {
        args.split()[0] for word, args in instructions() if word == "COPY" and "--from" not in args
    }
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    assert {p.rstrip("*") for p in packages} <= copied
    for source in copied:
        assert (ROOT / source).exists(), source


def test_the_healthcheck_command_works_against_a_running_server(demo_url: str) -> None:
    health = next(args for word, args in final_stage() if word == "HEALTHCHECK")
    command = json.loads(health.split(" CMD ", 1)[1])
    container = Container(settings=Settings(database_url=demo_url, today="2026-11-23"))
    with ServerThread(create_app(container, with_slack=False, with_teams=False)) as server:
        pointed = [part.replace("http://127.0.0.1:3000", server.url) for part in command]
        pointed[0] = sys.executable
        assert subprocess.run(pointed, timeout=30).returncode == 0
    # A server that is gone fails the check.
    assert subprocess.run(pointed, capture_output=True, timeout=30).returncode != 0


def test_the_compose_file_runs_migrations_once_then_the_app_on_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "migrate", "app"}
    assert services["db"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert services["migrate"]["command"] == ["csm-bot", "db", "upgrade"]
    app = services["app"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert app["command"][:2] == ["csm-bot", "serve"] and "0.0.0.0" in app["command"]
    for name in ("migrate", "app"):
        url = services[name]["environment"]["CSM_DATABASE_URL"]
        assert url.startswith("postgresql://csm:") and "@db:5432/csm" in url
        assert services[name]["env_file"] == ".env"
    assert app["ports"] == ["3000:3000"]
    # Every variable the compose file and .env.example name is one the assistant reads.
    example = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE)) - {
        "POSTGRES_PASSWORD"
    }
    known = {
        (f.validation_alias.choices[0] if f.validation_alias else f"CSM_{n.upper()}")
        for n, f in Settings.model_fields.items()
    }
    assert names <= known, names - known


def test_the_image_commands_run_in_a_plain_environment(tmp_path: Path) -> None:
    command = json.loads([args for word, args in final_stage() if word == "CMD"][-1])
    upgrade = command[-1].split("&&")[0].strip()
    env = {
        "PATH": str(Path(sys.executable).parent),
        "CSM_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'csm.db'}",
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        shlex.split(upgrade), env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Schema is up to date" in result.stdout
