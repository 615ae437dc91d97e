"""The same pipeline on Spark ``local[2]`` (driver bound to 127.0.0.1, UI off): the download with
img2dataset's pyspark distributor, then process and grit2odvg with ``--engine spark``; outputs must
be byte-identical to the local engine's. One Spark session for the whole module (startup is slow);
the commands run in-process (typer's CliRunner) and reuse it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from odvgkit.cli import app
from odvgkit.records import Record

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]").appName("odvgkit-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.pyspark.python", sys.executable)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        from pyspark import SparkContext

        gateway = SparkContext._gateway
        session.stop()
        if gateway is not None:  # the JVM outlives stop(): end it, the rest of the suite needs the memory
            proc = getattr(gateway, "proc", None)
            gateway.shutdown()
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=60)
            SparkContext._gateway = None
            SparkContext._jvm = None


def invoke(*args: str | Path) -> dict[str, Any]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(spark, grit_data, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("grit_spark")
    raw = root / "raw"
    dl = invoke("grit", "download", grit_data.metadata, "-o", raw, "--samples-per-shard", "4", "--image-size", "240",
                "--threads", "4", "--timeout", "5", "--distributor", "pyspark", "--json")
    spark_proc = invoke("grit", "process", raw, root / "spark", "--engine", "spark", "--json")
    spark_conv = invoke("convert", "grit2odvg", root / "spark", "-o", root / "spark.jsonl", "--engine", "spark", "--json")
    local_proc = invoke("grit", "process", raw, root / "local", "--workers", "1", "--json")
    local_conv = invoke("convert", "grit2odvg", root / "local", "-o", root / "local.jsonl", "--workers", "1", "--json")
    return {"root": root, "download": dl, "spark": (spark_proc, spark_conv), "local": (local_proc, local_conv)}


def test_pyspark_distributor_downloads_every_row(runs) -> None:
    dl = runs["download"]
    assert (dl["rows"], dl["downloaded"], dl["failed_to_download"], dl["failed_to_resize"]) == (8, 5, 2, 1)


def test_spark_outputs_identical_to_local(runs, expected_records) -> None:
    root: Path = runs["root"]
    spark_bytes = (root / "spark.jsonl").read_bytes()
    assert spark_bytes == (root / "local.jsonl").read_bytes()
    records = [json.loads(line) for line in spark_bytes.decode().splitlines()]
    assert [r["grounding"]["caption"] for r in records] == list(expected_records)
    for rec in records:
        Record.model_validate(rec)
        assert rec["grounding"]["regions"] == expected_records[rec["grounding"]["caption"]]["regions"]
    for ann in sorted((root / "local" / "annotations").glob("*.json")):
        assert (root / "spark" / "annotations" / ann.name).read_bytes() == ann.read_bytes()
    spark_images = sorted(p.relative_to(root / "spark") for p in (root / "spark" / "images").rglob("*.jpg"))
    local_images = sorted(p.relative_to(root / "local") for p in (root / "local" / "images").rglob("*.jpg"))
    assert spark_images == local_images and len(spark_images) == 5


def test_spark_driver_collects_per_shard_stats(runs) -> None:
    (sp, sc), (lp, lc) = runs["spark"], runs["local"]
    for spark_summary, local_summary in ((sp, lp), (sc, lc)):
        assert spark_summary["engine"] == "spark" and local_summary["engine"] == "local"
        strip = lambda d: {k: v for k, v in d.items() if k not in ("engine", "output", "problems")}  # noqa: E731
        assert strip(spark_summary) == strip(local_summary)
        assert spark_summary["problems"]["by_code"] == local_summary["problems"]["by_code"]
    assert [s["shard"] for s in sp["per_shard"]] == ["00000", "00001"]
    assert sum(s["rows"] for s in sp["per_shard"]) == 8
    assert sc["records"] == 3 and sc["samples"] == 5
