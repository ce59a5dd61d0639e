"""wrap keeps the client's settings; metering faults never reach the caller; the command runs."""

from __future__ import annotations

import subprocess
import sys

import httpx
import httpx2
import pytest

import meter
from meter.core import observe
from tests.support.cases import OWN_CASES, load_cases
from tests.support.replay import ReplayServer, case_response

CASES = {c.name.split("-", 1)[0]: c for c in load_cases(OWN_CASES)}


@pytest.mark.parametrize("stack", [httpx, httpx2])
def test_wrap_keeps_timeouts_limits_auth_mounts(stack: object) -> None:
    s: object = stack
    other = s.HTTPTransport()  # type: ignore[attr-defined]
    client = s.Client(  # type: ignore[attr-defined]
        timeout=7.5, auth=("user", "secret"), headers={"x-team": "a"},
        mounts={"http://other.example": other}, base_url="http://127.0.0.1:1",
    )
    before = (client.timeout, client.auth, client.headers["x-team"], client.base_url)
    assert meter.wrap(client) is client
    assert (client.timeout, client.auth, client.headers["x-team"], client.base_url) == before
    assert isinstance(client._transport, meter.MeteredTransport)
    mounted = [t for t in client._mounts.values() if t is not None]
    assert mounted and all(isinstance(t, meter.MeteredTransport) for t in mounted)
    assert any(t.inner is other for t in mounted)
    inner = client._transport.inner
    meter.wrap(client)
    assert client._transport.inner is inner  # not wrapped twice


def test_wrap_keeps_proxy_mounts() -> None:
    client = httpx2.Client(proxy="http://127.0.0.1:3128")
    proxies = [t for t in client._mounts.values() if t is not None]
    meter.wrap(client)
    assert [t.inner for t in client._mounts.values() if t is not None] == proxies


async def test_wrap_async_client() -> None:
    client = httpx2.AsyncClient()
    meter.wrap(client)
    assert isinstance(client._transport, meter.AsyncMeteredTransport)
    await client.aclose()


def test_wrap_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="openai client or an httpx/httpx2 client"):
        meter.wrap(object())


def test_auth_still_reaches_the_server_and_never_the_record() -> None:
    records: list[meter.CallRecord] = []
    with ReplayServer() as srv:
        srv.add("POST", "/openai/deployments/reasoner-prod/chat/completions", case_response(CASES["01"]))
        m = meter.Meter(on_record=records.append)
        client = meter.wrap(httpx2.Client(headers={"api-key": "KEY-123-secret"}), meter=m)
        client.post(srv.url + "/openai/deployments/reasoner-prod/chat/completions?api-version=2024-10-21",
                    json={"messages": []})
        assert srv.requests[0].header("api-key") == "KEY-123-secret"
    assert m.flush(10)  # the record comes on the metering worker
    assert len(records) == 1 and "KEY-123-secret" not in repr(records[0])


def test_a_parser_fault_is_counted_and_the_caller_unaffected(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(observe, "read_json_body", broken)
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append)
    with ReplayServer() as srv:
        srv.add("POST", "/openai/deployments/reasoner-prod/chat/completions", case_response(CASES["01"]))
        with httpx2.Client(transport=meter.MeteredTransport(httpx2.HTTPTransport(), m)) as client:
            r = client.post(srv.url + "/openai/deployments/reasoner-prod/chat/completions?api-version=2024-10-21",
                            json={"messages": []})
    assert r.content == CASES["01"].body
    assert m.flush(10)  # the body is read, and the fault counted, on the metering worker
    assert m.faults == {"parse": 1}
    assert records[0].usage is None and records[0].outcome == "ok"


def test_a_fault_while_beginning_lets_the_call_through(monkeypatch: pytest.MonkeyPatch) -> None:
    from meter import hub as meter_mod

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("route bug")

    monkeypatch.setattr(meter_mod.route_mod, "match", broken)
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append)
    with ReplayServer() as srv:
        srv.add("POST", "/openai/deployments/reasoner-prod/chat/completions", case_response(CASES["01"]))
        with httpx2.Client(transport=meter.MeteredTransport(httpx2.HTTPTransport(), m)) as client:
            r = client.post(srv.url + "/openai/deployments/reasoner-prod/chat/completions", json={})
    assert r.status_code == 200 and r.content == CASES["01"].body
    assert m.faults == {"begin": 1} and not records


def test_command_version_and_help() -> None:
    out = subprocess.run([sys.executable, "-m", "meter", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"meter {meter.__version__}"
    out = subprocess.run([sys.executable, "-m", "meter", "--help"], capture_output=True, text=True, check=True)
    assert "pricing" in out.stdout and "usage: meter" in out.stdout
