"""DuckDB's similarity functions for Spark SQL, so one model scores a pair the same on both.

Splink's own Spark UDFs (its Scala jar) compute Jaro differently from DuckDB (rapidfuzz's
algorithm) for some strings, e.g. `jutiette`/`juliette` is 0.869 in DuckDB and 0.845 there,
enough to move a pair across a comparison level. These Java UDFs
(`batch/engines/java/identity/spark/`) are ported from the online scorer's implementation,
which is tested against DuckDB. The jar is compiled from that source with the JDK's `javac`
against PySpark's own jars, once per source and Spark version, and cached.

    python -m batch.engines.udfs          # builds (if needed) and prints the jar's path
    python -m batch.engines.udfs --jars   # this jar and Splink's, for spark-submit --jars
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["UDFS", "jars", "register_udfs", "udf_jar"]

SOURCES = Path(__file__).with_name("java")
CACHE_ENV = "IDENTITY_SPARK_CACHE"

UDFS = (
    ("ig_jaro", "identity.spark.JaroSimilarity", "double"),
    ("ig_jaro_winkler", "identity.spark.JaroWinklerSimilarity", "double"),
    ("ig_levenshtein", "identity.spark.Levenshtein", "int"),
    ("ig_damerau_levenshtein", "identity.spark.DamerauLevenshtein", "int"),
)
"""(SQL name, Java class, return type): the names `identity_graph.matching.dialect` writes."""


def _cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "identity-graph")
    return Path(base)


def udf_jar() -> str:
    """The UDF jar's path, compiled now if this source and Spark version have no cached jar.

    Raises:
        RuntimeError: no `javac`/`jar` on PATH (a JDK, not only a JRE, is needed), or the
            compile failed.
    """
    import pyspark

    sources = sorted(SOURCES.rglob("*.java"))
    digest = hashlib.sha256(pyspark.__version__.encode())
    for src in sources:
        digest.update(src.read_bytes())
    jar = _cache_dir() / f"identity-spark-udfs-{digest.hexdigest()[:12]}.jar"
    if jar.exists():
        return str(jar)
    javac, jar_tool = shutil.which("javac"), shutil.which("jar")
    if not javac or not jar_tool:
        raise RuntimeError("building the Spark UDF jar needs a JDK (javac and jar on PATH)")
    classpath = str(Path(pyspark.__file__).parent / "jars" / "*")
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([javac, "--release", "17", "-cp", classpath, "-d", tmp,
                              *map(str, sources)], capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"javac failed: {out.stderr.strip()[:2000]}")
        part = jar.with_suffix(f".{os.getpid()}.part")
        subprocess.run([jar_tool, "cf", str(part), "-C", tmp, "."], check=True)
        os.replace(part, jar)
    return str(jar)


def register_udfs(spark: Any) -> None:
    """Registers the UDFs in `spark` (its driver must have `udf_jar()` on `spark.jars`)."""
    from pyspark.sql.types import DoubleType, IntegerType

    types = {"double": DoubleType(), "int": IntegerType()}
    for name, cls, ret in UDFS:
        spark.udf.registerJavaFunction(name, cls, types[ret])


def jars() -> str:
    """This jar and Splink's Scala UDF jar, comma-separated (`spark.jars`, `--jars`)."""
    from splink.backends.spark import similarity_jar_location

    return f"{udf_jar()},{similarity_jar_location()}"


if __name__ == "__main__":
    import sys

    print(jars() if "--jars" in sys.argv[1:] else udf_jar())
