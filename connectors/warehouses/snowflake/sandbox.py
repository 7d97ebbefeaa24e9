"""A Snowflake warehouse a benchmark may fill and empty: the fakesnow emulator, or a consented one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel

from core.config import SnowflakeWarehouse
from core.errors import ConfigError
from merge.session import WarehouseSession


@contextmanager
def bench_session(
    configured: BaseModel, local: BaseModel | None, *, yes: bool, consent: str
) -> Iterator[WarehouseSession]:
    """A session on the configured Snowflake warehouse when the user consents (`yes`), else on the
    fakesnow emulator (a dev dependency) when no Snowflake warehouse is configured.

    Raises:
        ConfigError: a Snowflake warehouse is configured and `yes` is not given.
    """
    from connectors.warehouses.snowflake.client import SnowflakeSession

    if isinstance(configured, SnowflakeWarehouse):
        if not yes:
            raise ConfigError(
                "bench merge would write into the configured Snowflake warehouse "
                f"{configured.location}, not the local stack's; {consent}, "
                "or configure no Snowflake warehouse to benchmark the emulator"
            )
        session = SnowflakeSession(configured)
        try:
            yield session
        finally:
            session.close()
        return
    import fakesnow  # the emulator, when no Snowflake account is configured

    with fakesnow.patch():
        fake = SnowflakeWarehouse.model_validate(
            {
                "kind": "snowflake",
                "account": "fakesnow",
                "user": "bench",
                "password": "-",
                "database": "cdchub_bench",
            }
        )
        session = SnowflakeSession(fake)
        try:
            yield session
        finally:
            session.close()
