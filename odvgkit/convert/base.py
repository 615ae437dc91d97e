"""The one small interface every converter shares.

A converter is a function that takes its inputs (paths, options, a :class:`ProblemLog`) and returns
a :class:`Conversion`: a lazy stream of ODVG records, the label map when the output is OD, and a
:class:`~collections.Counter` of what happened (``images``, ``boxes``, ``dropped:crowd`` …) that
fills up while the stream is consumed. :func:`write_conversion` is the only place that writes them,
so every ``odvgkit convert …`` command gets the same atomic outputs, refusal to overwrite inputs
and closing summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odvgkit.errors import ProblemLog
from odvgkit.io import AtomicGroup, check_distinct, record_writer, write_label_map
from odvgkit.io.jsonl import JsonlWriter

if TYPE_CHECKING:  # rich costs 30 ms to import: library callers (and benchmarks) need none of it
    from odvgkit.report import Reporter


@dataclass
class Conversion:
    records: Iterable[dict[str, Any]]
    label_map: dict[str, str] | None = None
    stats: Counter[str] = field(default_factory=Counter)
    # Optional fast path for JSON Lines outputs: the same records already serialised, as
    # ``(bytes, number of records)`` chunks. Used instead of ``records`` when the output is JSONL.
    jsonl_chunks: Iterable[tuple[bytes, int]] | None = None
    total: int | None = None  # number of records, when known before they flow (progress bars)


def default_output(input_path: str | Path, suffix: str) -> Path:
    """Upstream's naming, done right: ``instances_train2017.json`` → ``instances_train2017_od.json``.

    Upstream strips the last five characters whatever they are; only a real extension is removed
    here (``.json``, ``.jsonl``, ``.csv`` and their ``.gz`` forms).
    """
    p = Path(input_path)
    name = p.name
    for ext in (".json.gz", ".jsonl.gz", ".json", ".jsonl", ".csv", ".parquet"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(name + suffix)


def write_conversion(
    conversion: Conversion,
    output: str | Path,
    *,
    inputs: Iterable[str | Path],
    label_map_path: str | Path | None = None,
    extra_outputs: dict[str | Path, str] | None = None,
    on_records: Callable[[int], None] | None = None,
) -> int:
    """Write records (and label map, and any ``extra_outputs`` texts) atomically, all or none.

    Returns the number of records written.
    """
    inputs = list(inputs)
    check_distinct(output, inputs)
    if label_map_path is not None:
        check_distinct(label_map_path, inputs)
    with AtomicGroup() as group:
        if conversion.label_map is not None and label_map_path is not None:
            write_label_map(label_map_path, conversion.label_map, group)
        for path, text in (extra_outputs or {}).items():
            check_distinct(path, inputs)
            group.path(path).write_text(text, encoding="utf-8")
        with record_writer(group, output) as writer:
            if conversion.jsonl_chunks is not None and isinstance(writer, JsonlWriter):
                for chunk, count in conversion.jsonl_chunks:
                    writer.write_raw(chunk, count)
                    if on_records is not None:
                        on_records(count)
            else:
                for n, rec in enumerate(conversion.records, 1):
                    writer.write(rec)
                    if on_records is not None and n % 1024 == 0:
                        on_records(1024)
    conversion.stats["records_written"] = writer.count
    return writer.count


def summarise(
    reporter: Reporter,
    title: str,
    conversion: Conversion,
    outputs: dict[str, Any],
    problems: ProblemLog,
) -> None:
    rows: dict[str, Any] = dict(outputs)
    # "reason:detail" counters that stayed at zero are noise in a summary (they stay in --json)
    rows.update(sorted((k, v) for k, v in conversion.stats.items() if v or ":" not in k or reporter.json_mode))
    reporter.summary(title, rows, problems)
