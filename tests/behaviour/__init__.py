"""One behaviour suite, run on every warehouse.

`suite.py` holds the tests; they take a `warehouse` fixture (`Warehouse`) and never name a warehouse
themselves except through its documented representations. `tests/unit/test_behaviour.py` runs them on
DuckDB and on Snowflake (fakesnow), `tests/integration/test_behaviour_postgres.py` on the integration
stack's PostgreSQL.
"""
