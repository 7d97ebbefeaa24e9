"""cdchub: a change-data-capture hub (Debezium -> Kafka -> SCD Type 2 warehouse merges)."""

__version__ = "0.1.0"
