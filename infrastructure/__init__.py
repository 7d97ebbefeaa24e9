"""The local runtime: the native stack (PostgreSQL, MariaDB, Kafka KRaft, Kafka Connect + Debezium)."""
