"""The global-provider path, in a fresh process: meter.setup_otel() + Meter() with no arguments."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from meter import names
from tests.support.otlp_receiver import OtlpReceiver

SCRIPT = textwrap.dedent('''
    import sys
    sys.path.insert(0, {root!r})
    import meter
    from tests.support.replay import ReplayServer
    from tests.telemetry.workload import run_workload, serve_workload
    tp, mp = meter.setup_otel(service_name="demo-app")      # reads OTEL_EXPORTER_OTLP_ENDPOINT
    with ReplayServer() as srv:
        serve_workload(srv)
        run_workload(srv, meter.Meter())                   # no providers passed: the global ones
    tp.shutdown(); mp.shutdown()
''')


def test_setup_otel_and_default_meter_export_over_otlp() -> None:
    with OtlpReceiver() as receiver:
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        root = str(Path(__file__).resolve().parents[2])
        result = subprocess.run([sys.executable, "-c", SCRIPT.format(root=root)], env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        spans = receiver.wait_for_spans(9)
        assert {s.resource.get("service.name") for s in spans} == {"demo-app"}
        assert all(s.kind == "CLIENT" and s.scope == names.INSTRUMENTATION_SCOPE for s in spans)
        assert receiver.wait_for_metric(names.METRIC_OPERATION_DURATION)
