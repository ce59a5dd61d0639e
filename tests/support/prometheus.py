"""A real Prometheus server and promtool for tests.

Why a real server: the claims worth testing about meter's Prometheus output ("the counter has the
value we metered", "the exemplar carries the trace id", "this alert fires at this burn rate", "this
dashboard query parses") are claims about what *Prometheus* does with the exposition, not about the
text itself. The OpenMetrics negotiation, exemplar storage and PromQL evaluation only happen in
Prometheus, so these helpers start the installed ``prometheus`` binary (Debian 2.42) on a free
loopback port with its own config and TSDB in a temporary directory, and wrap ``promtool``.

    require_prometheus()
    with PrometheusServer(["127.0.0.1:9464"]) as prom:
        prom.wait_for_scrapes()
        assert prom.query("meter_requests_total")[0]["value"][1] == "3"

Cost: Prometheus is ready in ~0.2 s, but 2.42's discovery manager hands targets to the scrape
manager only every 5 s (no flag for that in 2.42), so the
first scrape lands ~5-6 s after start. Share one server per module (a ``scope="module"`` fixture) and
use ``wait_for_scrapes`` after changing the exporter, instead of starting a server per test.

The system service (0.0.0.0:9090) is never touched. Leaving the ``with`` block terminates the
process (then kills it) and deletes the temporary directory unless the caller supplied one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx2
import pytest
import yaml

__all__ = [
    "PROMETHEUS",
    "PROMTOOL",
    "PromQLError",
    "PrometheusServer",
    "free_port",
    "promtool_check_config",
    "promtool_check_metrics",
    "promtool_check_rules",
    "promtool_test_rules",
    "require_prometheus",
]

PROMETHEUS: str | None = shutil.which("prometheus")
PROMTOOL: str | None = shutil.which("promtool")

_READY_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0
_POLL_S = 0.1
_PROMTOOL_TIMEOUT_S = 60.0
_STDERR_TAIL = 4000


def require_prometheus() -> None:
    """Skip the calling test when prometheus/promtool are missing, but fail on CI.

    A developer without the binaries should still get a green local run; CI, where the package is
    part of the image, must never pass by silently skipping the very checks it exists to run.
    """
    missing = [name for name, path in (("prometheus", PROMETHEUS), ("promtool", PROMTOOL)) if path is None]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not found on PATH (Debian: apt-get install prometheus)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this is a failure, not a skip", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A currently free loopback TCP port (the OS picks it; a tiny race remains, see PrometheusServer.start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PromQLError(Exception):
    """Prometheus rejected a query; carries the expression so the failing PromQL is in the test output."""

    def __init__(self, expr: str, error: str) -> None:
        super().__init__(f"{error} (expr: {expr})")
        self.expr = expr
        self.error = error


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base``: nested dicts merge, anything else (lists included) replaces."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


class PrometheusServer:
    """One throw-away Prometheus on ``127.0.0.1:<free port>`` scraping ``targets`` as job ``meter``.

    ``extra_config`` is deep-merged into the generated prometheus.yml (dicts merge, lists replace), so
    a test can add scrape options or replace ``scrape_configs`` wholesale. ``rule_files`` are listed
    as given (absolute paths are safest). Exemplar storage and the lifecycle API (``reload``) are on.
    """

    url: str

    def __init__(
        self,
        targets: list[str],
        *,
        scrape_interval: str = "1s",
        extra_config: dict[str, Any] | None = None,
        rule_files: list[Path] | None = None,
        tmp: Path | None = None,
    ) -> None:
        self.target_addresses = list(targets)
        self.scrape_interval = scrape_interval
        self.extra_config = extra_config or {}
        self.rule_files = list(rule_files or [])
        self._own_tmp = tmp is None
        self.tmp = Path(tmp) if tmp is not None else Path(tempfile.mkdtemp(prefix="prometheus-test-"))
        self.config_file = self.tmp / "prometheus.yml"
        self.log_file = self.tmp / "prometheus.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._client = httpx2.Client(trust_env=False, timeout=10.0)  # never route loopback through a proxy

    # -- config and lifecycle

    def config(self) -> dict[str, Any]:
        """The prometheus.yml contents as a dict (written by ``start``; handy for promtool_check_config)."""
        config: dict[str, Any] = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "storage": {"exemplars": {"max_exemplars": 100000}},
            "scrape_configs": [{"job_name": "meter", "static_configs": [{"targets": self.target_addresses}]}],
        }
        if self.rule_files:
            config["rule_files"] = [str(p) for p in self.rule_files]
        return _deep_merge(config, self.extra_config)

    def write_config(self) -> Path:
        """Write prometheus.yml into the temp dir and return its path."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        return self.config_file

    def start(self) -> Self:
        """Start Prometheus and wait for ``/-/ready``.

        A free port can be taken between ``free_port()`` and Prometheus binding it, so a start that dies
        with "address already in use" is retried on a new port; any other failure raises at once with
        the tail of Prometheus' log.
        """
        if PROMETHEUS is None:
            require_prometheus()
            raise RuntimeError("prometheus binary not found")
        self.write_config()
        last_error = ""
        for _ in range(3):
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            tsdb = self.tmp / f"tsdb-{port}"
            with self.log_file.open("ab") as log:
                self._proc = subprocess.Popen(
                    [
                        PROMETHEUS,
                        f"--config.file={self.config_file}",
                        f"--storage.tsdb.path={tsdb}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--enable-feature=exemplar-storage",
                        "--web.enable-lifecycle",
                        "--log.level=warn",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.tmp,
                )
            try:
                self._wait_ready()
                return self
            except RuntimeError as exc:
                self._terminate()
                last_error = str(exc)
                if "address already in use" not in last_error:
                    break
        self._cleanup_tmp()
        raise RuntimeError(last_error)

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self._proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx2.TransportError):
                if self._client.get(self.url + "/-/ready", timeout=1.0).status_code == 200:
                    return
            time.sleep(_POLL_S)
        raise RuntimeError(f"prometheus not ready after {_READY_TIMEOUT_S}s at {self.url}:\n{self.log_tail()}")

    def log_tail(self, chars: int = _STDERR_TAIL) -> str:
        """The end of Prometheus' stdout/stderr, for failure messages."""
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=_STOP_TIMEOUT_S)

    def _cleanup_tmp(self) -> None:
        if self._own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def stop(self) -> None:
        """Terminate (then kill) the process, close the HTTP client, delete our own temp dir. Idempotent."""
        try:
            self._terminate()
        finally:
            self._client.close()
            self._cleanup_tmp()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the Prometheus process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def reload(self) -> None:
        """Re-read the config and rule files (``POST /-/reload``); call ``write_config`` first if it changed."""
        response = self._client.post(self.url + "/-/reload")
        if response.status_code != 200:
            raise RuntimeError(f"reload failed ({response.status_code}): {response.text}\n{self.log_tail()}")

    # -- HTTP API

    def _api(self, path: str, expr: str, params: dict[str, str]) -> Any:
        response = self._client.get(self.url + path, params=params)
        try:
            payload = response.json()
        except ValueError:
            raise PromQLError(expr, f"HTTP {response.status_code}: {response.text[:500]}") from None
        if payload.get("status") != "success":
            raise PromQLError(expr, f"{payload.get('errorType', 'error')}: {payload.get('error', payload)}")
        return payload["data"]

    def query(self, expr: str, time: float | None = None) -> list[dict[str, Any]]:
        """Instant query. Vectors come back as Prometheus returns them (``[{"metric": {...}, "value": [ts, "v"]}]``);
        scalar/string results are wrapped the same way with an empty ``metric`` so callers have one shape.
        """
        params = {"query": expr}
        if time is not None:
            params["time"] = repr(float(time))
        data = self._api("/api/v1/query", expr, params)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def value(self, expr: str, time: float | None = None) -> float | None:
        """The single sample of an instant query as a float; None if empty, AssertionError if several."""
        result = self.query(expr, time)
        if not result:
            return None
        if len(result) > 1:
            raise AssertionError(f"{expr} returned {len(result)} series, expected one: {result}")
        return float(result[0]["value"][1])

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> list[dict[str, Any]]:
        """Range query (``[{"metric": {...}, "values": [[ts, "v"], ...]}]``)."""
        params = {"query": expr, "start": repr(float(start)), "end": repr(float(end)), "step": step}
        return list(self._api("/api/v1/query_range", expr, params)["result"])

    def query_exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """Exemplars (``[{"seriesLabels": {...}, "exemplars": [{"labels": {...}, "value": "v", "timestamp": t}]}]``)."""
        params = {"query": expr, "start": repr(float(start)), "end": repr(float(end))}
        return list(self._api("/api/v1/query_exemplars", expr, params) or [])

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets (``health``, ``lastError``, ``labels``, ``scrapeUrl``, ...)."""
        return list(self._api("/api/v1/targets", "<targets>", {"state": "active"})["activeTargets"])

    def rules(self) -> list[dict[str, Any]]:
        """Loaded rule groups (``/api/v1/rules``), to check that rule files were picked up."""
        return list(self._api("/api/v1/rules", "<rules>", {})["groups"])

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts (``/api/v1/alerts``)."""
        return list(self._api("/api/v1/alerts", "<alerts>", {})["alerts"])

    # -- waiting

    def wait_for_scrapes(self, n: int = 2, timeout: float = 30.0) -> None:
        """Block until every configured target is up and has been scraped successfully at least ``n`` times.

        Counting successful scrapes (``sum_over_time(up[1h])``) rather than just waiting for health
        "up" matters for ``rate()``/``increase()``, which need two samples, and guarantees the latest
        state of the exporter has been ingested after the test changed it.
        """
        expected = set(self.target_addresses)
        deadline = time.monotonic() + timeout
        detail = ""
        while True:
            active = self.targets()
            by_instance = {t["labels"].get("instance", ""): t for t in active}
            down = {i: t.get("lastError", "") for i, t in by_instance.items() if t.get("health") != "up"}
            missing = expected - set(by_instance)
            if not missing and not down:
                counts = {
                    r["metric"].get("instance", ""): float(r["value"][1]) for r in self.query("sum_over_time(up[1h])")
                }
                short = {i: counts.get(i, 0.0) for i in by_instance if counts.get(i, 0.0) < n}
                if not short:
                    return
                detail = f"scrapes so far {short}, need {n}"
            else:
                detail = f"missing targets {sorted(missing)}, down {down}"
            if time.monotonic() >= deadline:
                raise AssertionError(f"targets not scraped {n} times after {timeout}s: {detail}\n{self.log_tail()}")
            time.sleep(_POLL_S * 2)

    def wait_until(
        self, expr: str, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Poll an instant query until ``predicate(result)`` holds; return that result (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"{expr} did not satisfy the predicate within {timeout}s; last result {result}")
            time.sleep(_POLL_S * 2)


# --------------------------------------------------------------------------- promtool


def _promtool(
    args: list[str], *, input: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    if PROMTOOL is None:
        require_prometheus()
        raise RuntimeError("promtool binary not found")
    return subprocess.run(
        [PROMTOOL, *args],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=_PROMTOOL_TIMEOUT_S,
        check=False,
    )


def promtool_check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    """Lint exposition text (stdin). Exit 0 clean, 3 lint problems, 1 parse error.

    Feed it the plain text format (``prometheus_client.generate_latest``): OpenMetrics with exemplars
    does not parse in 2.42.
    """
    return _promtool(["check", "metrics"], input=text)


def promtool_check_rules(*files: Path) -> subprocess.CompletedProcess[str]:
    """Parse rule files (PromQL syntax, names, labels)."""
    return _promtool(["check", "rules", *map(str, files)])


def promtool_test_rules(*files: Path) -> subprocess.CompletedProcess[str]:
    """Run rule unit tests; their ``rule_files`` resolve relative to each test file's directory."""
    return _promtool(["test", "rules", *map(str, files)])


def promtool_check_config(file: Path) -> subprocess.CompletedProcess[str]:
    """Validate a prometheus.yml (and the rule files it references)."""
    return _promtool(["check", "config", str(file)])
