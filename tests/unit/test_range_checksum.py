"""Per-key-range checksums localise a difference to the range that holds it."""

from __future__ import annotations

from ops.range_checksum import range_sums, row_hash


def _rows(n: int) -> dict[tuple[str, ...], list[object]]:
    return {(str(i),): [i, f"name {i}", i * 1.5] for i in range(1, n + 1)}


def test_equal_tables_have_equal_ranges_whatever_the_order() -> None:
    source = _rows(100)
    warehouse = dict(reversed(list(_rows(100).items())))
    sums = range_sums(source, warehouse, 8)
    assert len(sums) == 8 and all(r.ok for r in sums)
    assert sum(r.source_rows for r in sums) == 100
    assert [r.first for r in sums][:3] == [("1",), ("14",), ("27",)]  # numeric, not text, order


def test_a_changed_missing_or_extra_row_is_found_in_its_range() -> None:
    source = _rows(100)
    warehouse = _rows(100)
    warehouse[("42",)] = [42, "tampered", 63.0]
    del warehouse[("77",)]
    warehouse[("1000",)] = [1000, "extra", 1500.0]
    sums = range_sums(source, warehouse, 10)
    bad = [r for r in sums if not r.ok]

    def holds(r: object, key: int) -> bool:
        return int(r.first[0]) <= key <= int(r.last[0])  # type: ignore[attr-defined]

    tampered = [42, 77, 1000]
    # Each tampered key lies in a mismatched range, and each mismatched range holds one of them.
    assert all(any(holds(r, k) for r in bad) for k in tampered)
    assert all(sum(holds(r, k) for k in tampered) == 1 for r in bad)
    assert len(bad) == 3 and all(r.ok for r in sums if r not in bad)
    missing = next(r for r in bad if holds(r, 77))
    assert missing.source_rows == missing.warehouse_rows + 1


def test_row_hash_is_value_sensitive() -> None:
    assert row_hash([1, "a"]) != row_hash([1, "b"])
    assert row_hash([1, "a"]) == row_hash([1, "a"])
