"""Any command on a 0-byte ODVG file says so (one error), instead of writing an empty result."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hardening._cli import refused

COMMANDS = {
    "stats": ("stats", "{}"),
    "validate": ("validate", "{}"),
    "lint": ("lint", "{}"),
    "export": ("export", "coco", "{}", "-o", "c.json"),
    "split": ("split", "{}", "--ratio", "0.5", "-o", "parts"),
    "labels-remap": ("labels", "remap", "{}", "-m", "lm.json", "-o", "d.jsonl"),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_zero_byte_jsonl(work, name):
    (work / "empty.jsonl").write_bytes(b"")
    (work / "lm.json").write_text('{"0": "cat"}')
    args = [a.replace("{}", "empty.jsonl") for a in COMMANDS[name]]
    refused(work, *args, fragments=("empty.jsonl: empty file: no ODVG records",))


def test_bom_only_and_gz_and_parquet(work):
    import gzip

    (work / "bom.jsonl").write_bytes(b"\xef\xbb\xbf")
    refused(work, "stats", "bom.jsonl", fragments=("bom.jsonl: empty file",))
    (work / "e.jsonl.gz").write_bytes(gzip.compress(b""))
    refused(work, "validate", "e.jsonl.gz", fragments=("e.jsonl.gz: empty file",))
    from odvgkit.io.parquet import SCHEMA

    pq.write_table(pa.Table.from_pylist([], schema=SCHEMA), work / "e.parquet")
    refused(work, "stats", "e.parquet", fragments=("e.parquet: empty file: no ODVG records (0 rows)",))
