"""meter's overhead against the raw transport, through the real openai SDK, in one run.

Two workloads over a real loopback socket: a non-streaming chat call, and a
chat stream of N delta events (default 500) with Azure's framing and a usage
chunk. For each, the same SDK client shape is built twice, raw and wrapped by
``meter.wrap``; calls alternate between the two (ABAB...) so drift in the
machine hits both alike. The result is the ratio of median seconds per call.

    .venv/bin/python benchmarks/transport_overhead.py [--calls 400] [--chunks 500]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai

import meter
from tests.support.replay import CannedResponse, ReplayServer

API_VERSION = "2024-10-21"
PATH = "/openai/deployments/gpt4o/chat/completions"
STREAM_PATH = "/openai/deployments/gpt4o-stream/chat/completions"


def chat_body() -> bytes:
    return json.dumps({
        "choices": [{"content_filter_results": {}, "finish_reason": "stop", "index": 0,
                     "message": {"content": "Hello there, how can I help?", "role": "assistant"}}],
        "created": 1, "id": "chatcmpl-bench", "model": "gpt-4o-2024-11-20", "object": "chat.completion",
        "usage": {"completion_tokens": 9, "prompt_tokens": 12, "total_tokens": 21,
                  "prompt_tokens_details": {"cached_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}},
    }, separators=(",", ":")).encode()


def stream_chunks(n: int) -> list[bytes]:
    head = (b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":'
            b'[{"prompt_index":0,"content_filter_results":{}}]}\n\n')
    delta = (b'data: {"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},'
             b'"delta":{"content":" tok"},"finish_reason":null,"index":0,"logprobs":null}],"created":1,'
             b'"id":"chatcmpl-bench","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk",'
             b'"system_fingerprint":"fp","usage":null}\n\n')
    finish = (b'data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0}],'
              b'"created":1,"id":"chatcmpl-bench","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk",'
              b'"usage":null}\n\n')
    usage = (b'data: {"choices":[],"created":1,"id":"chatcmpl-bench","model":"gpt-4o-2024-11-20",'
             b'"object":"chat.completion.chunk","usage":{"completion_tokens":%d,"prompt_tokens":12,'
             b'"total_tokens":%d}}\n\ndata: [DONE]\n\n' % (n, n + 12))
    return [head] + [delta] * n + [finish, usage]


def client(url: str, metered: bool) -> Any:
    c = openai.AzureOpenAI(azure_endpoint=url, api_key="bench", api_version=API_VERSION, max_retries=0)
    if metered:
        # pricing and every sink the Meter has are on in the metered arm
        meter.wrap(c, meter=meter.Meter(on_record=lambda r: None))
    return c


def serve_in_child(responses: list[tuple[str, str, CannedResponse]]) -> tuple[str, Any]:
    """Run the replay server in its own process, so it never competes for this one's GIL."""
    parent, child = multiprocessing.Pipe()

    def run() -> None:
        with ReplayServer() as srv:
            for method, path, response in responses:
                srv.add(method, path, response)
            child.send(srv.url)
            child.recv()  # serve until the parent says stop

    proc = multiprocessing.get_context("fork").Process(target=run, daemon=True)
    proc.start()
    return parent.recv(), (proc, parent)


def stop_child(handle: Any) -> None:
    proc, pipe = handle
    pipe.send("stop")
    proc.join(5)


def measure(calls: int, fn_raw: Any, fn_metered: Any) -> dict[str, float]:
    raw: list[float] = []
    met: list[float] = []
    for _ in range(max(3, calls // 20)):  # warm-up both
        fn_raw()
        fn_metered()
    for i in range(calls):
        for fn, out in ((fn_raw, raw), (fn_metered, met)) if i % 2 == 0 else ((fn_metered, met), (fn_raw, raw)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    r, m = statistics.median(raw), statistics.median(met)
    return {"raw_ms": r * 1e3, "metered_ms": m * 1e3, "ratio": m / r}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--aa", action="store_true", help="A/A run: both arms raw, to see the noise floor")
    args = parser.parse_args()
    messages: Any = [{"role": "user", "content": "Say hello."}]
    url, handle = serve_in_child([
        ("POST", PATH, CannedResponse(200, [("content-type", "application/json")], [chat_body()], chunked=False)),
        ("POST", STREAM_PATH, CannedResponse(200, [("content-type", "text/event-stream")],
                                             stream_chunks(args.chunks))),
    ])
    try:
        raw_c, met_c = client(url, False), client(url, not args.aa)
        nonstream = measure(
            args.calls,
            lambda: raw_c.chat.completions.create(model="gpt4o", messages=messages),
            lambda: met_c.chat.completions.create(model="gpt4o", messages=messages),
        )

        def consume(c: Any) -> None:
            for _ in c.chat.completions.create(model="gpt4o-stream", messages=messages, stream=True):
                pass

        stream = measure(max(20, args.calls // 4), lambda: consume(raw_c), lambda: consume(met_c))
    finally:
        stop_child(handle)
    print(f"non-streaming chat call: raw {nonstream['raw_ms']:.3f} ms, metered {nonstream['metered_ms']:.3f} ms, "
          f"ratio {nonstream['ratio']:.3f}")
    print(f"{args.chunks}-chunk stream: raw {stream['raw_ms']:.3f} ms, metered {stream['metered_ms']:.3f} ms, "
          f"ratio {stream['ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
