"""Which Kafka topics carry which source's changes.

Debezium names data topics `<topic.prefix>.<schema or database>.<table>`; the same prefix also owns
`<prefix>.transaction` (BEGIN/END records). The prefix is the source's `name`, which is a plain
identifier without dots, so the first dotted part of a topic names its source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def data_topic_pattern(source_names: Iterable[str]) -> str:
    """A regex matching every data topic of the given sources (and no control topic)."""
    names = "|".join(re.escape(n) for n in sorted(source_names))
    return rf"^({names})\.(?!transaction$).+$"


def subscription_pattern(source_names: Iterable[str], transaction_sources: Iterable[str]) -> str:
    """Data topics of every source, plus `<prefix>.transaction` of transaction-consistent ones."""
    names = "|".join(re.escape(n) for n in sorted(source_names))
    tx_names = "|".join(re.escape(n) for n in sorted(transaction_sources))
    data = rf"({names})\.(?!transaction$).+"
    return rf"^(?:{data}|({tx_names})\.transaction)$" if tx_names else rf"^{data}$"


def source_of(topic: str) -> str:
    """The source name owning a data topic."""
    return topic.split(".", 1)[0]
