"""Observability of the hub: OpenTelemetry traces and metrics, replication lag, the dashboard.

The runner and the CLI call into this package; `merge/` never imports it (the engine only knows the
small `merge.observer.ApplyObserver` protocol, implemented here).
"""
