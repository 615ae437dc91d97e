"""The streaming reader gives what json.loads gives, wherever the blocks are cut."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io.jsonstream import stream_members

text = st.text(alphabet=st.sampled_from(list('ab}{][,":\\ é\n')), max_size=8)
scalar = st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=False, allow_infinity=False, width=32), text, st.none(), st.booleans())
nested = st.recursive(scalar, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(text, kids, max_size=3), max_leaves=8)
element = st.fixed_dictionaries({"id": st.integers(0, 10**9), "name": text}, optional={"extra": nested, "seg": nested})


class Elem(msgspec.Struct):
    id: int
    name: str


def _collect(path: Path, block: int, types: dict[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for key, first, items in stream_members(path, types, block_size=block):
        bucket = out.setdefault(key, [])
        if first >= 0:
            assert first == len(bucket)
        bucket.extend(items)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    images=st.lists(element, max_size=25),
    annotations=st.lists(element, max_size=25),
    info=nested,
    indent=st.sampled_from([None, 1, 2]),
    block=st.integers(1, 300),
    order=st.permutations(["info", "images", "annotations", "licenses"]),
)
def test_matches_json_loads(tmp_path: Path, images, annotations, info, indent, block, order) -> None:
    doc = {k: {"info": info, "images": images, "annotations": annotations, "licenses": [1, "x", [2]]}[k] for k in order}
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc, indent=indent, ensure_ascii=bool(block % 2)), encoding="utf-8")
    got = _collect(path, block, {"images": Elem, "annotations": dict, "info": Any})
    assert [(e.id, e.name) for e in got.get("images", [])] == [(e["id"], e["name"]) for e in images]
    assert got.get("annotations", []) == annotations
    assert got["info"] == [info] if not isinstance(info, list) else got["info"] == info


def test_wrong_element_types_are_reported_with_index(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"images": [{"id": 1, "name": "a"}, {"id": "2", "name": "b"}, {"name": "c"}, {"id": 4, "name": "d"}]}))
    problems = ProblemLog()
    got = [items for _, _, items in stream_members(path, {"images": Elem}, problems=problems, keep_invalid=True)]
    assert [[e and e.id for e in items] for items in got] == [[1, None, None, 4]]
    assert [p.format() for p in problems.examples["bad-element"]] == [
        f"{path}: images[1]: id: expected int, got str",
        f"{path}: images[2]: id: missing required field",
    ]
    with pytest.raises(OdvgError, match=r"images\[1\]: id: expected int, got str"):
        list(stream_members(path, {"images": Elem}, problems=ProblemLog(strict=True)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("[1]", "expected '{' at the start of the document"),
        ('{"images": [{"id": 1, "name": "a"},\n {"id": 2, "name": "b"', "2:"),
        ('{"images": [], "x": tru}', "1:"),
        ('{"images": []} extra', "unexpected data after the top-level object"),
        ('{"images" []}', "expected ':' after key 'images'"),
    ],
)
def test_syntax_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "d.json"
    path.write_text(content)
    with pytest.raises(OdvgError) as info:
        list(stream_members(path, {"images": Elem}, block_size=7))
    assert message in str(info.value) and str(path) in str(info.value)


def _columns(items: list[Any]) -> list[Any]:
    """A picklable transform for the parallel reader: keep what the test compares."""
    return [None if e is None else (e.id, e.name) for e in items]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    images=st.lists(element, max_size=40),
    other=st.lists(element, max_size=5),
    indent=st.sampled_from([None, 1]),
    block=st.integers(1, 400),
    tail=st.booleans(),
)
def test_parallel_reader_matches_sequential(tmp_path: Path, images, other, indent, block, tail) -> None:
    """Speculative cuts inside strings / past the array end must fall back and give the same batches."""
    from odvgkit.io.jsonstream import Parallel

    doc = {"images": images, "after": other} if tail else {"before": other, "images": images}
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc, indent=indent))
    par = Parallel({"images": _columns}, workers=2, min_bytes=0)
    got: list[Any] = []
    for key, first, result in stream_members(path, {"images": Elem}, block_size=block, parallel=par):
        assert key == "images" and first == len(got)
        got.extend(result)
    assert got == [(e["id"], e["name"]) for e in images]


def test_parallel_reader_reports_bad_elements_with_absolute_index(tmp_path: Path) -> None:
    from odvgkit.io.jsonstream import Parallel

    images = [{"id": i, "name": f"n{i}"} for i in range(300)]
    images[250]["id"] = "x"
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"images": images, "z": 1}))
    problems = ProblemLog()
    par = Parallel({"images": _columns}, workers=2, min_bytes=0)
    got = [r for _, _, res in stream_members(path, {"images": Elem}, problems=problems, block_size=512, keep_invalid=True, parallel=par) for r in res]
    assert len(got) == 300 and got[250] is None and got[251] == (251, "n251")
    assert [p.format() for p in problems.examples["bad-element"]] == [f"{path}: images[250]: id: expected int, got str"]
