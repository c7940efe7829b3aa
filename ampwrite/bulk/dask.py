"""``ampwrite.bulk.dask``: write a Dask bag or dataframe, one `write_partition` per partition,
with a ledger (needs the ``dask`` extra: ``pip install "ampwrite[dask]"``).

    from ampwrite.bulk.dask import write_dataframe

    results = write_dataframe(df, core, key="email", ledger="/shared/ledgers/job-42",
                              project_id_or_name=..., integration_id=..., object_name=...,
                              group_ref=...)
    results.compute()  # a pandas frame: key, partition, status, record_id, error, operation_id

The result is lazy, like any Dask collection, and safe to compute more than once: the ledger
makes a recomputed partition (a lost worker, a second `compute()`) send nothing it already
settled. See docs/distributed.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import dask.bag
import dask.dataframe
import pandas
from dask.delayed import delayed

from ..core import Core
from ._engine import write_partition
from ._ledger import Ledger
from ._partition import RESULT_COLUMNS, present, result_row, target_of

__all__ = ["RESULT_COLUMNS", "result_meta", "write_bag", "write_dataframe"]

_LOG = logging.getLogger("ampwrite")
_TEXT = "string"  # pandas text, missing values as NA (what Dask converts text columns to)


def result_meta() -> pandas.DataFrame:
    """The empty results table: its columns and dtypes (`partition` int64, the others
    pandas `string`)."""
    return _frame([])


def _frame(rows: list[Any]) -> pandas.DataFrame:
    frame = pandas.DataFrame.from_records(rows, columns=list(RESULT_COLUMNS))
    dtypes = {name: _TEXT for name in RESULT_COLUMNS}
    dtypes["partition"] = "int64"
    return frame.astype(dtypes)


def write_bag(
    bag: dask.bag.Bag,
    core: Core,
    *,
    key: str | Callable[[Any], object],
    ledger: str | os.PathLike[str],
    concurrency: int = 4,
    **options: Any,
) -> dask.dataframe.DataFrame:
    """Write every record (a dict) of `bag`; the results table, lazily, one row per record.

    `options` are those of `write_partition` (where to write, `type`, `batch_size`, ...).
    At most (partitions running at once) times `concurrency` requests are in flight across the
    cluster: the workers' threads bound the first.
    """
    parts: list[Any] = bag.to_delayed()  # type: ignore[no-untyped-call]
    return _write(parts, _records, core, key, ledger, concurrency, options)


def write_dataframe(
    frame: dask.dataframe.DataFrame,
    core: Core,
    *,
    key: str | Callable[[Any], object],
    ledger: str | os.PathLike[str],
    concurrency: int = 4,
    **options: Any,
) -> dask.dataframe.DataFrame:
    """Write every row of `frame` as a record (its columns; a missing value, None, NaN or NA,
    is left out); the results table, lazily. Otherwise as `write_bag`."""
    parts: list[Any] = frame.to_delayed()  # type: ignore[no-untyped-call]
    return _write(parts, _rows, core, key, ledger, concurrency, options)


def _records(part: Iterable[Any]) -> Iterable[Any]:
    return part


def _rows(part: pandas.DataFrame) -> Iterable[Any]:
    missing = pandas.isna
    return (present(row, missing) for row in part.to_dict(orient="records"))


def _write(
    parts: list[Any],
    records: Callable[[Any], Iterable[Any]],
    core: Core,
    key: str | Callable[[Any], object],
    ledger: str | os.PathLike[str],
    concurrency: int,
    options: Mapping[str, Any],
) -> dask.dataframe.DataFrame:
    if not isinstance(core, Core):
        raise TypeError(f"needs a Core, got {core.__class__.__name__}")
    options = {**options, "concurrency": concurrency}
    Ledger(ledger).bind(target_of(dict(options)), partitions=len(parts))
    slots = _slots()
    _LOG.info(
        "ampwrite: %d partitions, %d requests at most in flight each; %s",
        len(parts),
        concurrency,
        "no cluster client: the local scheduler's threads bound the partitions at once"
        if slots is None
        else f"{slots} task slots: at most {slots * concurrency} requests at once",
    )
    path = os.fspath(ledger)
    written = [
        delayed(_write_part)(part, number, core, key, path, records, options)
        for number, part in enumerate(parts)
    ]
    table: dask.dataframe.DataFrame = dask.dataframe.from_delayed(
        written, meta=result_meta(), verify_meta=False
    )
    return table


def _write_part(
    part: Any,
    number: int,
    core: Core,
    key: str | Callable[[Any], object],
    ledger: str,
    records: Callable[[Any], Iterable[Any]],
    options: Mapping[str, Any],
) -> pandas.DataFrame:
    outcomes = write_partition(
        core, records(part), key=key, ledger=ledger, partition=number, **options
    )
    return _frame([result_row(outcome, number) for outcome in outcomes])


def _slots() -> int | None:
    """The threads of the cluster the current `distributed` client reaches, if any."""
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        client = get_client()
    except ValueError:  # no client: the local scheduler runs the graph
        return None
    threads: dict[str, int] = client.nthreads()  # type: ignore[no-untyped-call]
    return sum(threads.values())
