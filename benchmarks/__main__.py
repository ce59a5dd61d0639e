"""Run meter's benchmarks and print them as Markdown tables (and optionally JSON).

    python -m benchmarks                 # everything, the full run behind docs/benchmarks.md
    python -m benchmarks --quick         # a smoke run: every part, few calls (CI runs this)
    python -m benchmarks --only overhead --rounds 3 --out result.json
    python -m benchmarks --only caller --only concurrency   # issue 25: the caller's thread, CPU, concurrency
    python -m benchmarks --only gil      # what one more thread costs a caller that never waits (issue 25)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

SECTIONS = ("overhead", "caller", "gil", "concurrency", "memory", "startup", "proxy", "ledger", "reconcile", "budgets")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "machine": platform.machine(), "cpus": str(_cpus())}
    for dist in ("meter", "openai", "httpx2", "httpx", "prometheus-client", "opentelemetry-sdk"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "-"
    return out


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _memory_table(result: dict[str, Any]) -> str:
    stream, calls = result["stream"], result["calls"]
    return "\n".join([
        "| measurement | raw | meter |", "|---|---:|---:|",
        f"| peak RSS, one {stream['events']:,}-event chat stream (MB) | {stream['raw']['peak_mb']:.1f} | "
        f"{stream['meter']['peak_mb']:.1f} |",
        f"| peak RSS growth from 10 % to 100 % of {calls['calls']:,} sequential S1 calls (MB) | "
        f"{calls['raw']['growth_after_10pct_mb']:.1f} | {calls['full']['growth_after_10pct_mb']:.1f} |",
    ])


def _startup_table(result: dict[str, Any]) -> str:
    lines = ["| process | `import meter` s | first `Meter()` s | total s | RSS added MB |", "|---|---:|---:|---:|---:|"]
    for name, row in result.items():
        lines.append(f"| {name} | {row['import_s']:.3f} | {row['first_meter_s']:.3f} | {row['total_s']:.3f} | "
                     f"{row['rss_added_mb']:.1f} |")
    return "\n".join(lines)


def _proxy_table(result: dict[str, Any]) -> str:
    lines = [f"saturated: {result['concurrency']} clients; then one client at a time", "",
             "| body | direct req/s | proxy req/s | ratio | direct p50 / p99 ms | proxy p50 / p99 ms | p50 added ms "
             "| unmetered ratio, p50 added ms | CPU µs/request: load, emulator, proxy, unmetered |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode in ("json", "stream", "json, 1 client", "stream, 1 client"):
        r = result[mode]
        lines.append(f"| {mode} | {r['direct']['rps']:,.0f} | {r['proxy']['rps']:,.0f} | "
                     f"**{r['throughput_ratio']:.2f}x** | "
                     f"{r['direct']['p50_ms']:.2f} / {r['direct']['p99_ms']:.2f} | "
                     f"{r['proxy']['p50_ms']:.2f} / {r['proxy']['p99_ms']:.2f} | {r['p50_added_ms']:+.2f} | "
                     f"{r['unmetered_ratio']:.2f}x, {r['unmetered_p50_added_ms']:+.2f} | "
                     f"{r['direct']['load_cpu_us']:,.0f}, {r['direct']['server_cpu_us']:,.0f}, "
                     f"{r['proxy']['server_cpu_us']:,.0f}, "
                     f"{r['unmetered']['server_cpu_us']:,.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: every part, few calls, no conclusions")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only this part (repeatable)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per scenario (default 3)")
    parser.add_argument("--calls", type=int, default=1500, help="JSON calls per arm per round (default 1500)")
    parser.add_argument("--stream-calls", type=int, default=120, help="stream calls per arm per round (default 120)")
    parser.add_argument("--deltas", type=int, default=500, help="delta events per stream (default 500)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="overhead, caller: the canned transport waits this long before answering (default 0)")
    parser.add_argument("--caller-calls", type=int, default=3000,
                        help="calls per row of the caller's-thread part (default 3000)")
    parser.add_argument("--concurrency-calls", type=int, default=2000,
                        help="calls per full-speed block of the concurrency part (default 2000)")
    parser.add_argument("--concurrency-seconds", type=float, default=2.0,
                        help="seconds per paced block of the concurrency part (default 2)")
    parser.add_argument("--out", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--postgres-url", metavar="URL", help="also measure ledger inserts into this PostgreSQL")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls, args.stream_calls, args.deltas = 1, 20, 4, 50
        args.caller_calls, args.concurrency_calls, args.concurrency_seconds = 50, 20, 0.05
    sections = tuple(args.only or SECTIONS)
    results: dict[str, Any] = {"versions": _versions(), "args": vars(args)}
    started = time.perf_counter()
    print(f"# meter benchmarks ({', '.join(f'{k} {v}' for k, v in results['versions'].items())})\n")
    if "overhead" in sections:
        from benchmarks import overhead

        results["overhead"] = overhead.run(args.rounds, args.calls, args.stream_calls, args.deltas,
                                           latency_s=args.latency_ms / 1000)
        print(f"## Per-call overhead ({args.rounds} rounds x {args.calls} JSON / {args.stream_calls} stream calls "
              f"per arm, in blocks of {overhead.JSON_BLOCK} / {overhead.STREAM_BLOCK}, {args.deltas} deltas per "
              f"stream, {args.latency_ms:g} ms transport latency)\n\n{overhead.table(results['overhead'])}\n",
              flush=True)
    if "caller" in sections:
        from benchmarks import caller

        results["caller"] = caller.run(args.caller_calls, args.latency_ms / 1000)
        print(f"## Caller's thread: time in meter per JSON call\n\n{caller.table(results['caller'])}\n", flush=True)
    if "gil" in sections:
        from benchmarks import gil

        results["gil"] = gil.run(args.rounds, args.caller_calls)
        print(f"## One more thread: what a thread that wants the GIL costs a busy caller ({args.rounds} rounds, "
              f"{args.caller_calls} S1 calls each)\n\n{gil.table(results['gil'])}\n", flush=True)
    if "concurrency" in sections:
        from benchmarks import concurrency

        results["concurrency"] = concurrency.run(args.rounds, args.concurrency_calls, args.concurrency_seconds)
        print(f"## Concurrency: meter's CPU per call and memory (S1, full configuration, {args.rounds} rounds)\n\n"
              f"{concurrency.table(results['concurrency'])}\n", flush=True)
    if "memory" in sections:
        from benchmarks import memory

        results["memory"] = {"stream": memory.long_stream(1_000 if args.quick else 100_000),
                             "calls": memory.sequential_calls(100 if args.quick else 10_000)}
        print(f"## Memory\n\n{_memory_table(results['memory'])}\n", flush=True)
    if "startup" in sections:
        from benchmarks import startup

        results["startup"] = startup.measure(1 if args.quick else 5)
        print(f"## Start-up (median of {1 if args.quick else 5} fresh processes)\n\n"
              f"{_startup_table(results['startup'])}\n", flush=True)
    if "proxy" in sections:
        from benchmarks import proxy

        results["proxy"] = proxy.run(1 if args.quick else args.rounds, 80 if args.quick else 4000,
                                     16 if args.quick else 400, 4 if args.quick else 8)
        print(f"## Proxy\n\n{_proxy_table(results['proxy'])}\n", flush=True)
    if "ledger" in sections:
        from benchmarks import ledger

        results["ledger"] = ledger.run(10_000 if args.quick else 1_000_000)
        r = results["ledger"]
        lines = "\n".join(f"| `--by {by}` | {t['groups']:,} | {t['seconds']:.2f} s |" for by, t in r["report"].items())
        print(f"## meter report on {r['rows']:,} ledger rows ({r['file_mb']:.0f} MB)\n\n"
              f"| report | groups | time |\n|---|---:|---:|\n{lines}\n", flush=True)
        if args.postgres_url:
            r["postgresql"] = ledger.run_postgres(args.postgres_url, 10_000 if args.quick else 1_000_000)
            pg = r["postgresql"]
            lines = "\n".join(f"| `--by {by}` | {t['groups']:,} | {t['seconds']:.2f} s |"
                              for by, t in pg["report"].items())
            print(f"## meter report on {pg['rows']:,} PostgreSQL ledger rows ({pg['database_mb']:.0f} MB)\n\n"
                  f"| report | groups | time |\n|---|---:|---:|\n{lines}\n", flush=True)
        import tempfile

        n = 2_000 if args.quick else 50_000
        r["insert_per_s"] = {"sqlite": ledger.insert_throughput(str(Path(tempfile.mkdtemp()) / "t.sqlite"), n)}
        if args.postgres_url:
            r["insert_per_s"]["postgresql"] = ledger.insert_throughput(args.postgres_url, n)
        r["per_call_us"] = ledger.per_call(50 if args.quick else 2000, 1 if args.quick else 3)
        inserts = ", ".join(f"{k} {v:,.0f} records/s" for k, v in r["insert_per_s"].items())
        calls = ", ".join(f"{k} {v:.0f} µs" for k, v in r["per_call_us"].items())
        print(f"insert throughput ({n:,} records): {inserts}\nS1 median: {calls}\n", flush=True)
    if "reconcile" in sections:
        from benchmarks import reconcile

        results["reconcile"] = reconcile.run(20_000 if args.quick else 1_000_000)
        lines = "\n".join(f"| {int(n):,} | {r['file_mb']:.1f} MB | {r['rows_per_s']:,.0f} rows/s | "
                          f"{r['max_rss_mb']:.0f} MB |" for n, r in results["reconcile"].items())
        print(f"## meter reconcile: reading an EA export (gzip)\n\n| rows | file | throughput | peak RSS |\n"
              f"|---:|---:|---:|---:|\n{lines}\n", flush=True)
    if "budgets" in sections:
        from benchmarks import budgets

        results["budgets"] = budgets.run(500 if args.quick else 20_000, args.postgres_url)
        table: list[str] = []
        for name, row in results["budgets"].items():
            for backend in ("sqlite", "postgresql"):
                if backend in row:
                    r = row[backend]
                    table.append(f"| {name} | {backend} | {row['calls']:,} | {row['memory_us']:.1f} | "
                                 f"{r['per_call_us']:.1f} | {r['round_trips_per_1000']:.1f} |")
        print("## Shared budgets: a hard budget's check with a local slice\n\n"
              "| scenario | database | calls | in memory µs/call | shared µs/call | round-trips per 1,000 calls |\n"
              "|---|---|---:|---:|---:|---:|\n" + "\n".join(table) + "\n", flush=True)
    results["seconds"] = time.perf_counter() - started
    print(f"({results['seconds']:.0f} s)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
