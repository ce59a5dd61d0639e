"""``meter proxy`` as a command: help, and a real foreground run with /metrics, OTLP spans and Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import openai
import pytest

from meter.apps.emulator import Emulator, EmulatorConfig
from meter.cli import build_parser
from tests.proxy.conftest import API_VERSION
from tests.support.otlp_receiver import OtlpReceiver

KEY = "sk-cli-SECRET-90d1e"


def test_help_runs_in_a_fresh_process() -> None:
    done = subprocess.run([sys.executable, "-m", "meter", "proxy", "--help"], capture_output=True, text=True,
                          timeout=30, check=True)
    for option in ("--upstream", "--port", "--metrics-port", "--metrics-addr", "--max-concurrency", "--deployments"):
        assert option in done.stdout


def test_defaults() -> None:
    args = build_parser().parse_args(["proxy", "--upstream", "https://r.openai.azure.com"])
    assert (args.host, args.port, args.metrics_port, args.metrics_addr, args.max_concurrency) == (
        "127.0.0.1", 8080, 9464, "127.0.0.1", 64)
    assert (args.connect_timeout, args.read_timeout, args.inject_stream_usage) == (10.0, 300.0, False)
    assert callable(args.handler)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_foreground_run_meters_serves_metrics_exports_spans_and_stops_on_ctrl_c() -> None:
    port, metrics_port = _free_port(), _free_port()
    with Emulator(EmulatorConfig(api_key=KEY)) as emu, OtlpReceiver() as receiver:
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}
        process = subprocess.Popen(
            [sys.executable, "-m", "meter", "proxy", "--upstream", emu.url, "--port", str(port),
             "--metrics-port", str(metrics_port)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 15
            while True:
                try:
                    httpx2.get(url + "/ready?")  # forwarded: the emulator's 404
                    break
                except httpx2.ConnectError:
                    assert time.monotonic() < deadline and process.poll() is None, "the proxy did not start"
                    time.sleep(0.05)
            with openai.AzureOpenAI(azure_endpoint=url, api_key=KEY, api_version=API_VERSION) as client:
                list(client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                    messages=[{"role": "user", "content": "hi"}]))
            (span,) = receiver.wait_for_spans(1, timeout=10)
            assert span.resource["service.name"] == "meter-proxy"
            assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
            metrics = httpx2.get(f"http://127.0.0.1:{metrics_port}/metrics").text
            assert 'llm_requests_total{' in metrics and 'deployment="gpt-4o-mini"' in metrics
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "meter.proxy: POST /openai/deployments/gpt-4o-mini/chat/completions 200" in err
    assert "GET /ready 404" in err
    assert KEY not in out + err


def _proxy_command(*options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meter", "proxy", "--upstream", "http://127.0.0.1:9",
                           "--port", str(_free_port()), "--metrics-port", "0", *options],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=30)


def _one_line_error(done: subprocess.CompletedProcess[str], *named: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ")
    for name in named:
        assert name in line, line


def test_a_missing_deployments_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    _one_line_error(_proxy_command("--deployments", str(missing)), str(missing), "cannot read file")


def test_a_bad_field_in_the_deployments_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "deployments.toml"
    bad.write_text('[deployments]\nchat = { model = "gpt-4o", deployment_type = "Bogus" }\n')
    _one_line_error(_proxy_command("--deployments", str(bad)), str(bad), "'deployment_type'", "'chat'")


@pytest.mark.parametrize("value", ["{not json", "/nonexistent/meter-deployments.toml"])
def test_a_bad_meter_deployments_variable_is_one_line_and_exit_2(value: str) -> None:
    _one_line_error(_proxy_command(env={"METER_DEPLOYMENTS": value}), "METER_DEPLOYMENTS")


def test_slow_client_flags_have_documented_defaults() -> None:
    args = build_parser().parse_args(["proxy", "--upstream", "https://r.openai.azure.com"])
    assert (args.head_timeout, args.body_timeout) == (10.0, 30.0)
    help_text = subprocess.run([sys.executable, "-m", "meter", "proxy", "--help"], capture_output=True, text=True,
                               timeout=30, check=True).stdout
    assert "--head-timeout" in help_text and "--body-timeout" in help_text


def _wait_listening(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "the proxy did not start"
            time.sleep(0.05)


def _lifetime(port: int, sent: bytes) -> tuple[bytes, float]:
    """Send ``sent`` and stall; what came back and the seconds until the proxy closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(sent)
        started = time.monotonic()
        answer = b""
        while piece := conn.recv(65536):
            answer += piece
        return answer, time.monotonic() - started


def test_the_command_bounds_heads_and_bodies_with_its_flags() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "meter", "proxy", "--upstream", "http://127.0.0.1:9", "--port", str(port),
         "--metrics-port", "0", "--head-timeout", "0.5", "--body-timeout", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_listening(port, process)
        answer, lived = _lifetime(port, b"POST /openai/x HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert answer == b"" and 0.4 < lived < 2.0
        answer, lived = _lifetime(port, b"POST /openai/x HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 100\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 408") and 0.4 < lived < 2.0
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)


def test_budgets_a_hard_budget_is_answered_429_by_the_proxy_and_never_reaches_the_upstream(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[[budget]]\nname = "mini-hard"\nmatch = { deployment = "gpt-4o-mini" }\nperiod = "day"\n'
                       'limit_usd = "0.001"\nenforce = "hard"\n')
    port, metrics_port = _free_port(), _free_port()
    with Emulator(EmulatorConfig(api_key=KEY)) as emu:
        process = subprocess.Popen(
            [sys.executable, "-m", "meter", "proxy", "--upstream", emu.url, "--port", str(port),
             "--metrics-port", str(metrics_port), "--budgets", str(budgets)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_listening(port, process)
            url = f"http://127.0.0.1:{port}"
            with openai.AzureOpenAI(azure_endpoint=url, api_key=KEY, api_version=API_VERSION) as client:

                def ask(max_tokens: int) -> object:
                    return client.chat.completions.create(model="gpt-4o-mini", max_tokens=max_tokens,
                                                          messages=[{"role": "user", "content": "hi"}])

                ask(50)  # a worst case of about 0.00003 USD fits the 0.001
                answered = len(emu.usage_log)
                with pytest.raises(openai.RateLimitError) as raised:
                    ask(5000)  # 5000 output tokens at 0.6 USD/M: 0.003, more than the whole limit
                assert len(emu.usage_log) == answered  # never sent upstream (nor retried)
                assert raised.value.code == "budget_exceeded" and "mini-hard" in str(raised.value)
                assert raised.value.response.headers["x-should-retry"] == "false"
                ask(50)
            metrics = httpx2.get(f"http://127.0.0.1:{metrics_port}/metrics").text
            assert 'llm_budget_refused_total{budget="mini-hard"} 1.0' in metrics  # one refusal: no SDK retry
            assert 'llm_budget_limit_usd{budget="mini-hard",enforce="hard",period="day"} 0.001' in metrics
        finally:
            process.send_signal(signal.SIGINT)
            _out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "POST /openai/deployments/gpt-4o-mini/chat/completions 429" in err


def test_a_bad_budgets_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "budgets.toml"
    bad.write_text('[[budget]]\nname = "b"\nperiod = "day"\nlimit_usd = "zero"\n')
    _one_line_error(_proxy_command("--budgets", str(bad)), str(bad), "'b'", "limit_usd")
