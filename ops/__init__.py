"""Operator services: verify, catalog, history, schema admin, lag report, checks, drift, checksums,
the dashboard and the telemetry of a run.

The CLI calls one of these per command. They may import everything below them (cdc_consumers,
connectors, merge, observability, core), never the CLI.
"""
