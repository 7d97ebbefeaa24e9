"""Debezium connector configurations, generated from the hub config, and their registration."""
