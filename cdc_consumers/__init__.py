"""Kafka consumption, Debezium envelope decoding and the unified change model."""
