"""``ampwrite.bulk.spark``: write a Spark DataFrame, one `write_partition` per partition, with
a ledger (needs the ``spark`` extra, ``pip install "ampwrite[spark]"``, and Java).

    from ampwrite.bulk.spark import write_dataframe

    results = write_dataframe(df, core, key="email", ledger="/shared/ledgers/job-42",
                              project_id_or_name=..., integration_id=..., object_name=...,
                              group_ref=...)
    results.groupBy("status").count().show()

The result is a DataFrame of a fixed schema (`RESULT_SCHEMA`; no inference job runs), lazy
like any other, and safe to evaluate more than once: every action re-runs the writes, and the
ledger makes them send nothing already settled. Cache or save it to read it many times for
free. The executors need a Python with ampwrite installed (`PYSPARK_PYTHON`). See
docs/distributed.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pyspark.sql import DataFrame, Row
from pyspark.sql.types import LongType, StringType, StructField, StructType

from ..core import Core
from ._engine import write_partition
from ._ledger import Ledger
from ._partition import RESULT_COLUMNS, ResultRow, present, result_row, target_of

__all__ = ["RESULT_SCHEMA", "write_dataframe"]

_LOG = logging.getLogger("ampwrite")

RESULT_SCHEMA = StructType(
    [
        StructField(name, LongType() if name == "partition" else StringType(), name != "status")
        for name in RESULT_COLUMNS
    ]
)
"""key, partition (long), status, record_id, error, operation_id (strings; only status is
never null)."""


def write_dataframe(
    df: DataFrame,
    core: Core,
    *,
    key: str | Callable[[Any], object],
    ledger: str | os.PathLike[str],
    concurrency: int = 4,
    **options: Any,
) -> DataFrame:
    """Write every row of `df` as a record (`row.asDict(recursive=True)`, None values left
    out); the results table, one row per input row, as a DataFrame of `RESULT_SCHEMA`.

    `options` are those of `write_partition` (where to write, `type`, `batch_size`, ...).
    At most (tasks running at once: the executors' cores) times `concurrency` requests are in
    flight across the cluster. The partitioning of `df` must be the same at every run that
    shares `ledger` (a partition's ledger is only right for the same records).
    """
    if not isinstance(core, Core):
        raise TypeError(f"needs a Core, got {core.__class__.__name__}")
    options = {**options, "concurrency": concurrency}
    rdd = df.rdd
    partitions = rdd.getNumPartitions()
    Ledger(ledger).bind(target_of(options), partitions=partitions)
    slots = df.sparkSession.sparkContext.defaultParallelism
    _LOG.info(
        "ampwrite: %d partitions, %d requests at most in flight each; %d task slots: at "
        "most %d requests at once",
        partitions,
        concurrency,
        slots,
        slots * concurrency,
    )
    job = _Partition(core, key, os.fspath(ledger), options)
    return df.sparkSession.createDataFrame(rdd.mapPartitionsWithIndex(job), RESULT_SCHEMA)


class _Partition:
    """The task of one partition (pickled to the executors)."""

    def __init__(
        self,
        core: Core,
        key: str | Callable[[Any], object],
        ledger: str,
        options: Mapping[str, Any],
    ) -> None:
        self.core = core
        self.key = key
        self.ledger = ledger
        self.options = dict(options)

    def __call__(self, number: int, rows: Iterable[Row]) -> Iterator[ResultRow]:
        records = (present(row.asDict(recursive=True), _is_none) for row in rows)
        # every record is sent and recorded before the first row is handed back: a consumer
        # that stops early (take) leaves no sent record without an outcome in the ledger
        outcomes = write_partition(
            self.core, records, key=self.key, ledger=self.ledger, partition=number, **self.options
        )
        return iter([result_row(outcome, number) for outcome in outcomes])


def _is_none(value: object) -> bool:
    return value is None
