"""A deterministic business workload against the demo databases (shop on PostgreSQL, inventory on
MariaDB), so the CDC pipeline has a realistic stream of inserts, updates and deletes to carry.

The workload plays the application: it connects as the stack's admin users and runs small
multi-statement transactions (place an order with its items and payment, ship it, cancel it,
restock a warehouse, ...), alternating between the sources at random.

Determinism: every choice comes from one `random.Random`, seeded with `seed` and a fingerprint of
the databases' starting state, and existing rows are chosen by `ORDER BY key LIMIT 1 OFFSET k`
inside the transaction. Timestamps come from a simulated clock, never from the wall clock. So the
same seed on the same starting data yields the same final data (and, with `events`, exactly that
many row changes), while a second run on already-changed data does not collide with the first.
"""

from dbschemas.workload.driver import SourceStats, WorkloadResult, run_workload

__all__ = ["SourceStats", "WorkloadResult", "run_workload"]
