"""What one more thread costs a caller that never waits on a socket: the limit of any metering worker.

The peers harness (``../shared/bench/peers``) and ``overhead`` answer from memory, so the caller's thread
is busy all the time and gives up the GIL only inside the SDK (``os.urandom`` for each call's
idempotency key, about once a call). A second thread that wants the GIL then costs the caller
each of those hand-backs (CPython wakes the waiter, which finds the GIL taken again) and is itself
starved: CPython forces a switch only after 5 ms (``sys.getswitchinterval()``) *without* a hand-back,
which never comes while calls take 0.6 ms. Here that thread runs no meter code at all: it sleeps
0.5 ms and wants the GIL back, in a loop. The arms, each in a fresh interpreter, rounds interleaved:

- ``alone``: S1 through the SDK on the in-process Azure, no other thread;
- ``waiter``: the same, with that thread; also how often it got the GIL while the caller ran.

    python -m benchmarks --only gil
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.subproc import run_python

ARMS = ("alone", "waiter")

_CHILD = """
import json, os, statistics, threading, time
import httpx2, openai
from benchmarks.azure import Answers, AzureTransport

urandom = os.urandom
hand_backs = [0]
def counted(n):  # how often the SDK calls it: each call gives the GIL up and takes it back
    hand_backs[0] += 1
    return urandom(n)
os.urandom = counted
client = openai.AzureOpenAI(api_key="bench", api_version="2024-10-21", azure_endpoint="https://bench.openai.azure.com",
                            http_client=httpx2.Client(transport=AzureTransport(Answers())), max_retries=0)
messages = [{{"role": "user", "content": "hi"}}]
def call():
    client.chat.completions.create(model="gpt-4o", messages=messages)
for _ in range(100):
    call()
ran, stop = [0], [False]
def waiter():
    while not stop[0]:
        time.sleep(0.0005)
        ran[0] += 1
if {arm!r} == "waiter":
    threading.Thread(target=waiter, daemon=True).start()
    time.sleep(0.01)
ran[0] = hand_backs[0] = 0
times = []
started = time.perf_counter()
for _ in range({calls}):
    t0 = time.perf_counter_ns()
    call()
    times.append(time.perf_counter_ns() - t0)
seconds = time.perf_counter() - started
got = ran[0]
stop[0] = True
print(json.dumps({{"median_us": statistics.median(times) / 1000, "seconds": seconds, "waiter_ran": got,
                  "hand_backs_per_call": hand_backs[0] / {calls}}}))
"""


def run(rounds: int, calls: int) -> dict[str, Any]:
    """Per arm: the median of the rounds' median µs per call, and the waiter's turns while the caller ran."""
    samples: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for _ in range(rounds):
        for arm in ARMS:
            samples[arm].append(run_python(_CHILD.format(arm=arm, calls=calls), timeout=600))
    result: dict[str, Any] = {}
    for arm, rows in samples.items():
        result[arm] = {"median_us": statistics.median(r["median_us"] for r in rows),
                       "rounds_us": [round(r["median_us"], 1) for r in rows],
                       "waiter_ran": [r["waiter_ran"] for r in rows],
                       "seconds": [round(r["seconds"], 2) for r in rows],
                       "hand_backs_per_call": statistics.median(r["hand_backs_per_call"] for r in rows)}
    result["ratio"] = result["waiter"]["median_us"] / result["alone"]["median_us"]
    return result


def table(result: dict[str, Any]) -> str:
    alone, waiter = result["alone"], result["waiter"]
    lines = ["| arm | median µs per S1 call | rounds | the other thread got the GIL | GIL hand-backs per call |",
             "|---|---:|---|---|---:|"]
    for arm, row in (("alone", alone), ("waiter", waiter)):
        turns = "-" if arm == "alone" else ", ".join(f"{n} times in {s} s" for n, s in zip(row["waiter_ran"],
                                                                                        row["seconds"], strict=True))
        lines.append(f"| {arm} | {row['median_us']:.1f} | {', '.join(map(str, row['rounds_us']))} | {turns} | "
                     f"{row['hand_backs_per_call']:.1f} |")
    lines.append(f"\nA thread that only wants the GIL: **{result['ratio']:.3f}x** the call alone "
                 f"(+{waiter['median_us'] - alone['median_us']:.1f} µs per call).")
    return "\n".join(lines)
