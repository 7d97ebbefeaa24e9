"""OpenTelemetry providers and exporters, built from the `observability:` config section.

Providers are created per process (never installed as OTel globals), so tests can build their own
with in-memory exporters and several runners in one process do not fight over one global.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Tracer

from core.errors import ConfigError
from core.observability_config import ObservabilityConfig

log = logging.getLogger(__name__)
# Replication lag spans milliseconds (streaming) to hours (a stalled connector): seconds buckets.
LAG_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
INSTRUMENTATION_SCOPE = "cdchub"


@dataclass
class Telemetry:
    """A tracer and a meter with their providers; `shutdown` flushes and stops the exporters."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    prometheus_address: tuple[str, int] | None = None
    _servers: list[Any] = field(default_factory=list)

    @property
    def tracer(self) -> Tracer:
        return self.tracer_provider.get_tracer(INSTRUMENTATION_SCOPE)

    @property
    def meter(self) -> Meter:
        return self.meter_provider.get_meter(INSTRUMENTATION_SCOPE)

    def shutdown(self) -> None:
        """Flush spans and metrics, stop the scrape endpoint."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        for server in self._servers:
            server.shutdown()
            server.server_close()


def _views() -> list[View]:
    return [
        View(
            instrument_name="cdchub.replication.lag",
            aggregation=ExplicitBucketHistogramAggregation(LAG_BUCKETS_S),
        ),
        View(
            instrument_name="cdchub.batch.duration",
            aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS_S),
        ),
    ]


def _prometheus(host: str, port: int) -> tuple[MetricReader, Any, tuple[str, int]]:
    """A Prometheus reader and its HTTP server (port 0 picks a free port)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    # A private registry per endpoint: two runners in one process (tests) must not collide.
    registry = CollectorRegistry(auto_describe=True)
    reader = PrometheusMetricReader(registry=registry)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return reader, server, (host, server.server_address[1])


def _otlp(config: ObservabilityConfig) -> tuple[SpanProcessor, MetricReader]:
    otlp = config.otlp
    try:
        if otlp.protocol == "http":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            base = otlp.endpoint.rstrip("/")
            spans: Any = OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=otlp.headers)
            metrics: Any = OTLPMetricExporter(endpoint=f"{base}/v1/metrics", headers=otlp.headers)
        else:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # type: ignore
                OTLPMetricExporter as GrpcMetricExporter,
            )
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore
                OTLPSpanExporter as GrpcSpanExporter,
            )

            spans = GrpcSpanExporter(endpoint=otlp.endpoint, headers=otlp.headers)
            metrics = GrpcMetricExporter(endpoint=otlp.endpoint, headers=otlp.headers)
    except ImportError as exc:
        raise ConfigError(
            f"observability.otlp.protocol={otlp.protocol} needs the package "
            f"opentelemetry-exporter-otlp-proto-{otlp.protocol}: {exc}"
        ) from exc
    reader = PeriodicExportingMetricReader(metrics, export_interval_millis=otlp.export_interval_ms)
    return BatchSpanProcessor(spans), reader


def build_telemetry(
    config: ObservabilityConfig,
    *,
    span_processors: list[SpanProcessor] | None = None,
    metric_readers: list[MetricReader] | None = None,
    serve_prometheus: bool = True,
) -> Telemetry:
    """Providers with the exporters the config asks for, plus any given processors and readers.

    A Prometheus port that is already taken is logged and skipped: metrics must never stop a run.
    """
    resource = Resource.create({"service.name": config.service_name})
    processors = list(span_processors or [])
    readers = list(metric_readers or [])
    servers: list[Any] = []
    address = None
    if config.console.traces:
        processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
    if config.console.metrics:
        readers.append(
            PeriodicExportingMetricReader(
                ConsoleMetricExporter(), export_interval_millis=config.console.export_interval_ms
            )
        )
    if config.otlp.enabled:
        processor, reader = _otlp(config)
        processors.append(processor)
        readers.append(reader)
    if serve_prometheus and config.prometheus.enabled:
        try:
            reader, server, address = _prometheus(config.prometheus.host, config.prometheus.port)
        except OSError as exc:
            log.warning(
                "prometheus endpoint %s:%s not started: %s",
                config.prometheus.host,
                config.prometheus.port,
                exc,
            )
        else:
            readers.append(reader)
            servers.append(server)
    tracer_provider = TracerProvider(resource=resource)
    for processor in processors:
        tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, views=_views())
    return Telemetry(tracer_provider, meter_provider, address, servers)
