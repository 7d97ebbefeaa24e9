"""The OTLP/HTTP exporter configured from `observability.otlp` really posts spans and metrics.

The collector is a tiny local HTTP server that records what it receives; the payloads are decoded
with the OTLP protobuf definitions, so the test sees what a real collector would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from core.observability_config import ObservabilityConfig, OtlpConfig
from observability.metrics import HubMetrics
from observability.telemetry import build_telemetry


@pytest.fixture
def collector() -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    received: dict[str, list[bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.setdefault(self.path, []).append(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_spans_and_metrics_reach_an_otlp_http_collector(
    collector: tuple[str, dict[str, list[bytes]]],
) -> None:
    endpoint, received = collector
    config = ObservabilityConfig(otlp=OtlpConfig(enabled=True, endpoint=endpoint))
    telemetry = build_telemetry(config, serve_prometheus=False)
    with telemetry.tracer.start_as_current_span("process batch"):
        pass
    HubMetrics(telemetry.meter).replication_lag.record(0.25, {"source": "shop", "table": "t"})
    telemetry.shutdown()  # flushes both exporters

    spans = [
        span.name
        for body in received["/v1/traces"]
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    assert spans == ["process batch"]
    metrics = {
        metric.name: metric
        for body in received["/v1/metrics"]
        for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    lag = metrics["cdchub.replication.lag"].histogram.data_points
    assert [(p.count, p.sum) for p in lag] == [(1, 0.25)]
