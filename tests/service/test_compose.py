"""Static checks of docker-compose.yml, the Prometheus scrape config and the Grafana files.

Docker has no engine here, so the compose file is checked against the real code: every
command must parse with the real ``nbi`` CLI (Typer/click introspection, values type-checked),
and the dashboard may reference only metric names that ``service/metrics.py`` defines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from service.cli import build_app
from service.metrics import ServiceMetrics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def cli_command(name: str) -> Any:
    group: Any = typer.main.get_command(build_app())  # typer may ship its own click
    return group.commands[name]


def defined_series() -> set[str]:
    """Every series name the service's registry can expose."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names = set()
    for family in ServiceMetrics().registry.collect():
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names


def test_all_services_exist():
    assert {"api", "learner", "redis", "prometheus", "grafana"} <= set(SERVICES)


@pytest.mark.parametrize("service,subcommand", [("api", "serve"), ("learner", "learner")])
def test_commands_parse_with_the_real_cli(service: str, subcommand: str):
    argv = [str(a) for a in SERVICES[service]["command"]]
    assert argv[0] == subcommand
    command = cli_command(subcommand)
    known = {opt for p in command.params for opt in p.opts}
    used = [a for a in argv[1:] if a.startswith("--")]
    assert set(used) <= known, f"unknown options {set(used) - known}"
    ctx = command.make_context(f"nbi {subcommand}", argv[1:])  # raises on bad values
    if subcommand == "serve":
        assert ctx.params["store"] == "redis" and int(ctx.params["workers"]) >= 2
        assert int(ctx.params["port"]) == 8000


def test_redis_is_durable_and_volumes_hold_data_and_models():
    redis_cmd = " ".join(SERVICES["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and "--appendfsync always" in redis_cmd
    assert any(v.endswith(":/data") for v in SERVICES["redis"]["volumes"])
    for name in ("api", "learner"):
        assert any(v.startswith("models:") for v in SERVICES[name]["volumes"])
    assert {"redis-data", "models"} <= set(COMPOSE["volumes"])
    env = SERVICES["api"]["environment"]
    assert env["NBI_STORE"] == "redis" and env["NBI_REDIS_URL"].startswith("redis://redis:6379")
    assert env["NBI_LEARNING"] == "worker"


def test_prometheus_scrapes_the_api_and_learner_metrics():
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    api_port = SERVICES["api"]["ports"][0].split(":")[-1]
    api = jobs["nbi-api"]
    assert api["metrics_path"] == "/metrics"
    assert api["static_configs"][0]["targets"] == [f"api:{api_port}"]
    learner_argv = [str(a) for a in SERVICES["learner"]["command"]]
    learner_port = learner_argv[learner_argv.index("--metrics-port") + 1]
    assert jobs["nbi-learner"]["static_configs"][0]["targets"] == [f"learner:{learner_port}"]
    mounted = SERVICES["prometheus"]["volumes"][0].split(":")[0]
    assert (ROOT / mounted).resolve() == (ROOT / "deploy/prometheus/prometheus.yml").resolve()


def test_grafana_is_provisioned_with_a_dashboard_of_real_metrics():
    ds = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = ds["datasources"][0]["uid"]
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/nbi.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert all(p["datasource"]["uid"] == uid for p in dashboard["panels"])
    used = {m for e in exprs for m in re.findall(r"\bnbi_[a-z0-9_]+", e)}
    known = defined_series()
    assert used and used <= known, f"undefined metrics {sorted(used - known)}"
    # the dashboard covers every metric family the service defines
    families = {f.name for f in ServiceMetrics().registry.collect()}
    covered = {f for f in families if any(u.startswith(f) for u in used)}
    assert covered == families, f"not on the dashboard: {sorted(families - covered)}"


def test_dockerfile_copies_existing_sources_and_runs_the_nbi_cli():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    sources = [src for srcs in copies for src in srcs]
    assert sources and all((ROOT / src).exists() for src in sources), sources
    packaged = {"bandit", "simulator", "offline_eval", "service"}
    assert packaged <= set(sources)
    assert 'ENTRYPOINT ["nbi"]' in lines
    for service in ("api", "learner"):
        assert SERVICES[service]["build"] == "."
