"""A mixed workload through the real openai SDK against a loopback replay server.

Chat and Responses, streaming and not, embeddings, a 429 retried by the SDK,
an estimated stream (old api-version, no include_usage), two attribution
teams. Used by the telemetry tests, which then compare what the sinks emitted
with the records the same calls produced.
"""

from __future__ import annotations

from typing import Any

import openai

import meter
from tests.support.cases import OWN_CASES, load_cases
from tests.support.replay import ReplayServer, case_response

CASES = {c.name.split("-", 1)[0]: c for c in load_cases(OWN_CASES)}
KEY = "sk-DISTINCTIVE-SECRET-7f3a9c"
MESSAGES: Any = [{"role": "user", "content": "hello"}]


def serve_workload(srv: ReplayServer) -> None:
    """Queue the responses the workload below asks for (each path's responses repeat)."""
    srv.add("POST", "/openai/deployments/reasoner-prod/chat/completions", case_response(CASES["01"]))
    throttled = case_response(CASES["16"])
    throttled.headers = [(k, "5" if k.lower() == "retry-after-ms" else v) for k, v in throttled.headers
                         if k.lower() != "retry-after"]
    srv.add("POST", "/openai/deployments/gpt4o-east/chat/completions", throttled, times=1)
    srv.add("POST", "/openai/deployments/gpt4o-east/chat/completions", case_response(CASES["03"]))
    srv.add("POST", "/openai/deployments/mini/chat/completions", case_response(CASES["04"]))
    srv.add("POST", "/openai/responses", case_response(CASES["12"]))
    srv.add("POST", "/openai/v1/responses", case_response(CASES["13"]))
    srv.add("POST", "/openai/deployments/emb-small/embeddings", case_response(CASES["10"]))


def run_workload(srv: ReplayServer, m: meter.Meter) -> None:
    """About a dozen calls of every kind, split between two teams, then ``m.flush()``."""
    fast = openai.AzureOpenAI(azure_endpoint=srv.url, api_key=KEY, api_version="2024-10-21", max_retries=2)
    old = openai.AzureOpenAI(azure_endpoint=srv.url, api_key=KEY, api_version="2024-06-01", max_retries=0)
    v1 = openai.OpenAI(base_url=srv.url + "/openai/v1/", api_key=KEY, max_retries=0)
    for client in (fast, old, v1):
        meter.wrap(client, meter=m)
    with meter.attribute(team="search"):
        fast.chat.completions.create(model="reasoner-prod", messages=MESSAGES)
        list(fast.chat.completions.create(model="gpt4o-east", messages=MESSAGES, stream=True))  # 429 first
        fast.embeddings.create(model="emb-small", input="hello")
        fast.responses.create(model="gpt-4.1-nano", input="hello")
    with meter.attribute(team="ads"):
        list(fast.chat.completions.create(model="gpt4o-east", messages=MESSAGES, stream=True))
        list(old.chat.completions.create(model="mini", messages=MESSAGES, stream=True))  # estimated
        with v1.responses.stream(model="gpt-5-mini", input="hello") as stream:
            for _ in stream:
                pass
        fast.chat.completions.create(model="reasoner-prod", messages=MESSAGES)
    m.flush()  # the records, spans, metrics and faults are made on the metering thread: all there now
