"""A one-liner for applications that want OTLP export and have no OpenTelemetry setup yet.

meter itself only ever uses the providers it is given or the global ones; it
never installs a provider behind the user's back. ``setup_otel()`` is the
explicit opt-in: it builds SDK providers with OTLP/HTTP exporters configured
from the standard ``OTEL_EXPORTER_OTLP_*`` variables and, unless told not to,
makes them the global providers. Needs the ``otlp`` extra.
"""

from __future__ import annotations

from typing import Any


def setup_otel(service_name: str = "meter", set_global: bool = True,
               metric_export_interval_s: float = 10.0) -> tuple[Any, Any]:
    """Create (and by default install globally) a TracerProvider and a MeterProvider exporting over OTLP/HTTP."""
    from meter.extras import require

    require("otlp", "meter.setup_otel()")
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_NAME: service_name})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(),
                                           export_interval_millis=int(metric_export_interval_s * 1000))
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider
