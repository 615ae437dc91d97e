"""``odvgkit index``: the byte-offset index ``IndexedODVGDataset`` trains from (``odvgkit/index.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, input_bytes, reporter


def index(
    inputs: Annotated[list[Path], typer.Argument(help="ODVG JSON Lines file(s) (.jsonl).", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Index path (one input only). Default: FILE.odvgidx beside it.")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Only check existing indexes (stale, foreign, truncated); write nothing.")] = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Write FILE.odvgidx: byte offsets, line CRCs and kept labels of every record of an ODVG file.

    The trainer's IndexedODVGDataset (what `odvgkit train` configs use) memory-maps it instead of
    parsing the whole file in every process, and decodes one record per sample. Built in one
    streaming pass; refused later when the file changed (size, mtime, content of its ends) or the
    index belongs to another file, is truncated or corrupt. `odvgkit train` builds missing ones
    itself; run this once ahead of a multi-node run, or with --check to verify.

    [bold]Examples[/bold]

      odvgkit index o365_train_od.jsonl goldg_vg.jsonl

      odvgkit index o365_train_od.jsonl --check
    """
    import time

    from odvgkit.errors import OdvgError
    from odvgkit.index import OdvgIndex, build_index, index_path

    if output is not None and len(inputs) != 1:
        raise OdvgError("--output names the index of one input; give one file or drop --output", 2)
    rep = reporter(quiet, json_mode)
    table = []
    records = boxes = 0
    t0 = time.perf_counter()
    for path in inputs:
        target = output if output is not None else index_path(path)
        if check:
            idx = OdvgIndex(path, target)
            table.append({"file": str(path), "index": str(target), "records": idx.records, "boxes": idx.boxes})
            records += idx.records
            boxes += idx.boxes
            continue
        with rep.progress(f"index {path.name}", total=input_bytes(path), unit="bytes") as adv:
            res = build_index(path, target, progress=adv)
        table.append({"file": str(path), "index": str(res.index), "records": res.records, "boxes": res.boxes,
                      "seconds": round(res.seconds, 2)})
        records += res.records
        boxes += res.boxes
    rows = {"files": len(inputs), "records": records, "boxes": boxes, "seconds": round(time.perf_counter() - t0, 2)}
    rep.summary("index (checked)" if check else "index", rows, tables={"indexes": table})


def register(app: typer.Typer) -> None:
    app.command("index", rich_help_panel="Curate")(index)
