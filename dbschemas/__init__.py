"""The demo business behind `cdchub demo`: an online shop (PostgreSQL) and its inventory (MariaDB).

`loader.load_demo_schemas` creates and seeds the databases; `dbschemas.workload` then changes them.
"""
