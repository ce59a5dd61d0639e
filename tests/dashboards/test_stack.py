"""compose.yaml and the Grafana provisioning, checked statically (no container runtime here)."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from meter.dashboards import boards, generate
from meter.dashboards.queries import DEFAULT as q

ROOT = generate.ROOT
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PROVISIONING = ROOT / "grafana" / "provisioning"
DATASOURCES: dict[str, Any] = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
PROVIDERS: dict[str, Any] = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
PROMETHEUS: dict[str, Any] = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())


def mounts(service: str) -> dict[str, Path]:
    """Container path -> host path (resolved against dashboards/, where compose.yaml lives)."""
    out = {}
    for volume in SERVICES[service].get("volumes", []):
        host, container, *_ = volume.split(":")
        out[container] = (ROOT / host).resolve()
    return out


def container_file(service: str, path: str) -> Path:
    """The host file a container path maps to through the service's bind mounts (longest mount wins)."""
    target = PurePosixPath(path)
    for container, host in sorted(mounts(service).items(), key=lambda kv: -len(kv[0])):
        if target == PurePosixPath(container) or PurePosixPath(container) in target.parents:
            return host / target.relative_to(container)
    raise AssertionError(f"{path} is not mounted into {service}")


def test_services_and_every_mounted_host_path_exists() -> None:
    assert set(SERVICES) == {"prometheus", "grafana", "jaeger", "demo"}
    for service in SERVICES:
        for container, host in mounts(service).items():
            assert host.exists(), f"{service}: {host} (mounted at {container}) is missing"
    assert mounts("demo")["/src"] == ROOT.parent  # the repository, for `pip install .[demo]`


def test_prometheus_service_keeps_exemplars_and_loads_the_rules() -> None:
    prom = SERVICES["prometheus"]
    assert "--enable-feature=exemplar-storage" in prom["command"]
    config = next(a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file="))
    assert container_file("prometheus", config) == ROOT / "prometheus" / "prometheus.yml"
    config_dir = PurePosixPath(config).parent
    for rule_file in PROMETHEUS["rule_files"]:
        assert container_file("prometheus", str(config_dir / rule_file)) == ROOT / "prometheus" / "alerts.yml"
    assert PROMETHEUS["storage"]["exemplars"]["max_exemplars"] > 0


def test_prometheus_scrapes_the_demo_and_a_typical_app() -> None:
    targets = {t for job in PROMETHEUS["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert "demo:9464" in targets and len(PROMETHEUS["scrape_configs"]) >= 2
    demo = SERVICES["demo"]
    command = " ".join(demo["command"])
    assert "meter demo --serve" in command and "--metrics-addr 0.0.0.0" in command
    assert "--metrics-port 9464" in command and "--seconds 3600" in command
    assert "[demo]" in command and "/src" in command
    assert demo["image"].startswith("python:3.11")
    assert "host.docker.internal:host-gateway" in SERVICES["prometheus"]["extra_hosts"]


def test_demo_exports_traces_to_jaeger_over_otlp() -> None:
    endpoint = SERVICES["demo"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint == "http://jaeger:4318"
    jaeger = SERVICES["jaeger"]
    assert {"4317:4317", "4318:4318", "16686:16686"} <= set(jaeger["ports"])
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"


def test_datasources_link_exemplars_to_jaeger() -> None:
    by_type = {d["type"]: d for d in DATASOURCES["datasources"]}
    prom, jaeger = by_type["prometheus"], by_type["jaeger"]
    destinations = prom["jsonData"]["exemplarTraceIdDestinations"]
    assert destinations == [{"name": "trace_id", "datasourceUid": jaeger["uid"]}]
    assert q.EXEMPLAR_TRACE_ID_LABEL == "trace_id"  # what meter's Prometheus sink writes (integration test too)
    assert prom["url"] == "http://prometheus:9090" and jaeger["url"] == "http://jaeger:16686"
    assert prom["jsonData"]["timeInterval"] == PROMETHEUS["global"]["scrape_interval"]
    assert prom["isDefault"] is True


def test_dashboard_provider_points_at_the_mounted_dashboards() -> None:
    (provider,) = PROVIDERS["providers"]
    assert provider["type"] == "file"
    folder = container_file("grafana", provider["options"]["path"])
    assert folder == ROOT / "grafana"
    assert {p.name for p in folder.glob("*.json")} == set(boards.all_dashboards())
    assert container_file("grafana", "/etc/grafana/provisioning/datasources/datasources.yml").is_file()
    assert container_file("grafana", "/etc/grafana/provisioning/dashboards/dashboards.yml").is_file()
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert json.loads(container_file("grafana", home).read_text())["uid"] == "meter-cost"


@pytest.mark.parametrize("file", sorted(boards.all_dashboards()))
def test_dashboards_resolve_with_the_provisioned_datasource(file: str) -> None:
    # DS_PROMETHEUS is a datasource variable of type prometheus: the provisioned default Prometheus fills it
    dash = json.loads((ROOT / "grafana" / file).read_text())
    (ds_var,) = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
    assert ds_var["query"] == next(d["type"] for d in DATASOURCES["datasources"] if d.get("isDefault") is True)
