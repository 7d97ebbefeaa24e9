"""The `observability:` and `checks:` sections of cdchub.yaml (pydantic, unknown keys are errors).

Defaults suit the local stack: metrics on a Prometheus endpoint at 127.0.0.1:29464, no trace export
(spans are still created, so an in-process exporter or a later OTLP endpoint sees them).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrometheusConfig(_Model):
    """A scrape endpoint served by `cdchub run` (and the demo) for Prometheus."""

    enabled: bool = True
    # Loopback by default: the endpoint has no authentication.
    host: str = "127.0.0.1"
    port: int = Field(29464, ge=0, le=65535)


class OtlpConfig(_Model):
    """Push traces and metrics to an OpenTelemetry collector."""

    enabled: bool = False
    protocol: Literal["http", "grpc"] = "http"
    # http: the collector's base URL (…/v1/traces and …/v1/metrics are appended); grpc: host:port.
    endpoint: str = "http://127.0.0.1:4318"
    headers: dict[str, str] = Field(default_factory=dict)
    export_interval_ms: int = Field(10000, gt=0)


class ConsoleConfig(_Model):
    """Print spans and metrics to stderr (debugging)."""

    traces: bool = False
    metrics: bool = False
    export_interval_ms: int = Field(10000, gt=0)


class DashboardConfig(_Model):
    """The lag dashboard; `cdchub run` serves it too, since DuckDB admits no reader beside a writer."""

    serve_in_run: bool = True
    host: str = "127.0.0.1"
    port: int = Field(29465, ge=0, le=65535)
    window_s: float = Field(900.0, gt=0)


class ObservabilityConfig(_Model):
    """Exporters, the service name and the lag thresholds."""

    service_name: str = "cdchub"
    prometheus: PrometheusConfig = PrometheusConfig()
    otlp: OtlpConfig = OtlpConfig()
    console: ConsoleConfig = ConsoleConfig()
    # Kafka consumer lag and heartbeat age are sampled at most this often (they cost broker calls).
    sample_interval_s: float = Field(5.0, gt=0)
    # A raw lag below this (commit time in the warehouse's future) is flagged as clock skew.
    skew_tolerance_ms: float = Field(0.0, ge=0)
    # Freshness SLO: lag (seconds) above which a table is stale; per table `source.namespace.table`.
    freshness_slo_s: float | None = Field(None, gt=0)
    freshness_slo_per_table_s: dict[str, float] = Field(default_factory=dict)
    dashboard: DashboardConfig = DashboardConfig()

    def slo_for(self, table: str) -> float | None:
        """The freshness SLO of `table` (`source.namespace.table`), or the default, or None."""
        return self.freshness_slo_per_table_s.get(table, self.freshness_slo_s)


class ChecksConfig(_Model):
    """Data-quality checks run inside `cdchub run` (off by default: verify reads whole tables)."""

    interval_seconds: float | None = Field(None, gt=0)
