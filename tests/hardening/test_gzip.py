"""Damaged .gz inputs: one error naming the file — not zlib.error, not a bare "Aborted."."""

from __future__ import annotations

import gzip
import json

import pytest
from hardening._cli import CATS, coco_ann, coco_image, od_record, refused


def _payload(kind: str) -> bytes:
    if kind == "coco":
        doc = {"images": [coco_image(i) for i in range(1, 200)], "annotations": [coco_ann(1, 1)], "categories": CATS}
        return json.dumps(doc).encode()
    return "".join(json.dumps(od_record(f"{i}.jpg")) + "\n" for i in range(200)).encode()


def _damage(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[: len(data) // 2]
    if how == "bad-crc":
        return data[:-8] + b"\0\0\0\0" + data[-4:]
    if how == "bad-block":  # zlib itself rejects the deflate stream
        return data[:10] + b"\xff" * 40 + data[50:]
    if how == "not-gzip":
        return b"this is not gzip at all\n"
    raise AssertionError(how)


DAMAGE = {"truncated": "truncated", "bad-crc": "CRC check failed", "bad-block": "invalid",
          "not-gzip": "Not a gzipped file"}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_coco2odvg(work, how):
    (work / "in.json.gz").write_bytes(_damage(gzip.compress(_payload("coco")), how))
    refused(work, "convert", "coco2odvg", "in.json.gz", "-o", "out.jsonl",
            fragments=("in.json.gz: corrupt gzip data", DAMAGE[how]))


@pytest.mark.parametrize("how", ["truncated", "bad-block"])
@pytest.mark.parametrize("command", [("stats",), ("validate",), ("export", "coco")])
def test_odvg_readers(work, how, command):
    (work / "in.jsonl.gz").write_bytes(_damage(gzip.compress(_payload("odvg")), how))
    extra = ("-o", "out.json") if command[0] == "export" else ()
    refused(work, *command, "in.jsonl.gz", *extra, fragments=("in.jsonl.gz: corrupt gzip data", DAMAGE[how]))


def test_library_reader_raises_odvg_error(tmp_path):
    from odvgkit.errors import OdvgError
    from odvgkit.io import read_records

    p = tmp_path / "x.jsonl.gz"
    p.write_bytes(_damage(gzip.compress(_payload("odvg")), "truncated"))
    with pytest.raises(OdvgError, match="corrupt gzip data: truncated"):
        list(read_records(p))
