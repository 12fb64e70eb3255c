"""Building the Spark session: Delta jars from the runtime cache, modest memory, UTC.

The table catalogue is a Hive-compatible metastore: with ``metastore_uri`` set, Spark uses
that (production: a shared Hive metastore service); otherwise Spark's embedded Derby database
under ``<runtime_dir>/metastore``. Embedded Derby admits one process at a time, so this
process first takes an exclusive lock on ``metastore.lock`` beside it and, if another process
holds it, fails at once with :class:`MetastoreBusy` naming the lock and its holder instead of
waiting on Derby.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING

import structlog

from infra.errors import StackError
from infra.stack import jvm
from schemas.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = structlog.get_logger(__name__)

DELTA_JARS = ("delta-spark_2.13-*.jar", "delta-storage-*.jar")


class MetastoreBusy(StackError):
    """Another process has the embedded (Derby) metastore open."""


def ensure_jars(settings: Settings) -> Path:
    """Resolve the Delta jars with Maven into the cache (once); return the folder."""
    return jvm.ensure_jars(settings, "spark", DELTA_JARS[0])


def delta_jars(settings: Settings) -> list[Path]:
    """The Delta jars in the cache; StackError (run ``make setup``) when they are missing."""
    libs = jvm.jar_dir(settings, "spark")
    found = [jar for pattern in DELTA_JARS for jar in sorted(libs.glob(pattern))]
    if len(found) != len(DELTA_JARS):
        raise StackError(
            f"the Delta Lake jars for Spark are missing from {libs}: run `make setup` "
            "(tillflow setup resolves them with Maven)"
        )
    return found


def metastore_dir(settings: Settings) -> Path:
    return (settings.runtime_dir / "metastore").resolve()


def warehouse_dir(settings: Settings) -> Path:
    return (settings.runtime_dir / "spark-warehouse").resolve()


_held: dict[Path, IO[str]] = {}


def lock_metastore(settings: Settings) -> Path:
    """Hold ``metastore.lock`` for this process's life; MetastoreBusy if another holds it."""
    path = metastore_dir(settings) / "metastore.lock"
    if path in _held:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise MetastoreBusy(
            f"the embedded metastore (Derby, {path.parent}) is in use by process {holder}: "
            f"it admits one process at a time (lock {path}). Wait for that process, or set "
            "TILLFLOW_METASTORE_URI to a shared Hive metastore."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _held[path] = handle
    return path


def release_metastore(settings: Settings) -> None:
    handle = _held.pop(metastore_dir(settings) / "metastore.lock", None)
    if handle is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def spark_session(settings: Settings) -> SparkSession:
    """A Spark session with Delta and the table catalogue (Hive metastore)."""
    from pyspark.sql import SparkSession

    jvm.find_java("Spark")
    jars = delta_jars(settings)
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName("tillflow-batch")
        .config("spark.jars", ",".join(str(j.resolve()) for j in jars))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        # Delta rebuilds a table's state (DESCRIBE DETAIL, reads) in this many tasks; its
        # default of 50 costs minutes per catalogue listing on a small machine.
        .config("spark.databricks.delta.snapshotPartitions", str(settings.spark_shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.warehouse.dir", str(warehouse_dir(settings)))
    )
    if settings.metastore_uri:
        builder = builder.config("spark.hadoop.hive.metastore.uris", settings.metastore_uri)
    else:
        derby = metastore_dir(settings) / "derby"
        lock_metastore(settings)
        builder = builder.config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={derby};create=true",
        ).config("spark.driver.extraJavaOptions", f"-Dderby.system.home={metastore_dir(settings)}")
    if settings.spark_master.startswith("local"):
        # A local session talks to itself only: over the loopback interface.
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    try:
        session = builder.enableHiveSupport().getOrCreate()
    except Exception:
        release_metastore(settings)
        raise
    session.sparkContext.setLogLevel("ERROR")
    log.info(
        "spark.started",
        master=session.sparkContext.master,
        version=session.version,
        metastore=settings.metastore_uri or "embedded",
    )
    return session
