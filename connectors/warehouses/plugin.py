"""What a warehouse kind is made of: its config model, dialect and client, as one registry entry."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from merge.batch_plan import StageSql
from merge.dialect import Dialect
from merge.session import WarehouseSession


@dataclass(frozen=True)
class WarehousePlugin:
    """One warehouse kind. `client` names the session class as `module:Class`: it is imported only
    when a session is opened or its bulk path rendered, so listing kinds never imports a driver."""

    kind: str
    config: type[BaseModel]
    dialect: type[Dialect]
    client: str
    summary: str
    # "module:function": the warehouse `cdchub bench merge` may fill and empty (`<kind>/sandbox.py`).
    sandbox: str

    def session_class(self) -> Any:
        """The client's session class (imports the driver)."""
        module, _, name = self.client.partition(":")
        return getattr(importlib.import_module(module), name)

    def open(self, config: BaseModel, *, read_only: bool = False) -> WarehouseSession:
        """A session on the warehouse `config` describes."""
        opener: Callable[..., WarehouseSession] = self.session_class().from_config
        return opener(config, read_only=read_only)

    def bench_session(
        self, configured: BaseModel, local: BaseModel | None, *, yes: bool, consent: str
    ) -> AbstractContextManager[WarehouseSession]:
        """A session a benchmark may fill and empty, chosen by the warehouse's `sandbox.py`.

        `configured` is the configured warehouse (of any kind), `local` this kind's warehouse on
        the local stack (None when the stack runs none); `consent` says how the user allows writing
        into a warehouse that is neither local nor an emulator (the function refuses without `yes`).
        """
        module, _, name = self.sandbox.partition(":")
        opener: Callable[..., AbstractContextManager[WarehouseSession]] = getattr(
            importlib.import_module(module), name
        )
        return opener(configured, local, yes=yes, consent=consent)

    def stage_sql(self) -> StageSql:
        """The statements of the client's bulk path (for `render-sql`)."""
        stage_sql: StageSql = self.session_class().stage_sql
        return stage_sql
