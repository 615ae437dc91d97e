"""``odvgkit labels rename|merge|remap``: label maps across datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, Strict, reporter

labels_app = typer.Typer(
    help="Normalise class names, merge label maps, remap label ids (contiguously and back).",
    no_args_is_help=True,
)

Style = Annotated[
    list[str] | None,
    typer.Option("--style", "-s", help="Normalisation, repeatable, applied in order: lvis, o365, lower."),
]


@labels_app.command("rename")
def rename(
    label_map: Annotated[Path, typer.Argument(help="Label map JSON {\"0\": name, ...}.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Renamed label map.")],
    style: Style = None,
    table: Annotated[
        Path | None, typer.Option("--table", "-t", help="Rename table: CSV old,new or JSON {old: new} (applied first).")
    ] = None,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Normalise class names; ids are unchanged, so records need no rewrite.

    [bold]lvis[/bold]: bat_(animal) → bat (animal) (mmdet's clean_name would drop the qualifier and
    merge bat_(animal) with bat_(sports_equipment)); [bold]o365[/bold]: the Objects365 v2 name fixes
    MM-GDINO applies (Moniter/TV → Monitor/TV …); [bold]lower[/bold]: lower case. Collisions created by
    renaming are reported.

    [bold]Examples[/bold]

      odvgkit labels rename lvis_v1_label_map.json --style lvis -o lvis_names.json

      odvgkit labels rename o365v2_label_map.json --style o365 --table my_fixes.csv -o o365_fixed.json
    """
    from odvgkit.curate.labels import check_keys, duplicates, read_table
    from odvgkit.curate.labels import rename as do_rename
    from odvgkit.errors import OdvgError
    from odvgkit.io import check_distinct, read_label_map, write_label_map

    styles = style or []
    if not styles and table is None:
        raise OdvgError("nothing to do: give --style and/or --table", exit_code=2)
    lm = read_label_map(label_map)
    check_keys(lm, label_map)
    tbl = read_table(table) if table is not None else None
    new = do_rename(lm, styles, tbl)
    check_distinct(output, [label_map])
    write_label_map(output, new)
    changed = [{"label": k, "old": lm[k], "new": new[k]} for k in lm if lm[k] != new[k]]
    rep = reporter(quiet, json_mode)
    for d in duplicates(new):
        rep.warn(f"{output}: duplicate name after renaming: {d}")
    rep.summary("labels rename", {"input": str(label_map), "output": str(output), "labels": len(lm),
                                  "renamed": len(changed)}, tables={"renamed_labels": changed[:20] if not json_mode else changed})


@labels_app.command("merge")
def merge(
    label_maps: Annotated[list[Path], typer.Argument(help="Label maps to merge, in priority order.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Merged label map.")],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="Per-input old→new tables (JSON). Default: <output stem>_mapping.json.")
    ] = None,
    style: Style = None,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Union of label maps by (normalised) name: the first map keeps its ids, new names follow.

    Writes the merged map and, per input, its old→new table; remap each dataset onto the merged map
    with [bold]odvgkit labels remap FILE -m OLD --to MERGED[/bold].

    [bold]Examples[/bold]

      odvgkit labels merge coco_label_map.json o365v2_label_map.json --style lower -o coco_o365_label_map.json
    """
    import json

    from odvgkit.curate.labels import check_keys
    from odvgkit.curate.labels import merge as do_merge
    from odvgkit.io import AtomicGroup, check_distinct, read_label_map, write_label_map

    maps = []
    for p in label_maps:
        lm = read_label_map(p)
        check_keys(lm, p)
        maps.append(lm)
    merged, tables = do_merge(maps, style or [])
    map_out = mapping or output.with_name(output.name.split(".")[0] + "_mapping.json")
    for o in (output, map_out):
        check_distinct(o, label_maps)
    doc = {"merged": str(output), "sources": [
        {"label_map": str(p), "old_to_new": {str(k): v for k, v in t.items()}} for p, t in zip(label_maps, tables, strict=True)
    ]}
    with AtomicGroup() as group:
        write_label_map(output, merged, group)
        group.path(map_out).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    rows = {"output": str(output), "mapping": str(map_out), "labels": len(merged)}
    per = [{"label_map": p.name, "labels": len(m), "shared": sum(1 for v in t.values() if v < len(maps[0])) if i else 0,
            "new": len(set(t.values()) - set(range(len(maps[0])))) if i else len(m)}
           for i, (p, m, t) in enumerate(zip(label_maps, maps, tables, strict=True))]
    reporter(quiet, json_mode).summary("labels merge", rows, tables={"inputs": per})


@labels_app.command("remap")
def remap(
    input: Annotated[Path, typer.Argument(help="ODVG OD file whose labels are rewritten.")],
    label_map: Annotated[Path, typer.Option("--label-map", "-m", help="The input's label map.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Remapped ODVG file.")],
    to: Annotated[Path | None, typer.Option("--to", help="Target label map: remap by class name (e.g. a merged map).")] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="Apply a mapping written by an earlier remap (with --reverse: undo it).")
    ] = None,
    reverse: Annotated[bool, typer.Option("--reverse", help="With --mapping: map new ids back to the old ones.")] = False,
    label_map_out: Annotated[
        Path | None, typer.Option("--label-map-out", help="Label map of the output. Default: <output stem>_label_map.json.")
    ] = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Rewrite record labels: contiguously (default), onto another map by name, or by a mapping file.

    Default: sparse ids (e.g. LVIS norare) become 0..N-1 in id order. Every remap also writes
    <output stem>_mapping.json, so --mapping that file --reverse restores the original ids. A
    label missing from the label map is a one-line error (mismatched label map).

    [bold]Examples[/bold]

      odvgkit labels remap lvis_v1_train_od_norare.json -m lvis_v1_label_map_norare.json -o lvis_norare_dense.jsonl

      odvgkit labels remap lvis_norare_dense.jsonl -m lvis_norare_dense_label_map.json --mapping lvis_norare_dense_mapping.json --reverse -o lvis_back.jsonl

      odvgkit labels remap o365_od.jsonl -m o365v2_label_map.json --to coco_o365_label_map.json -o o365_merged_ids.jsonl
    """
    import json

    from odvgkit.curate.labels import (
        by_name,
        check_keys,
        contiguous,
        mapping_document,
        read_mapping,
        remap_records,
    )
    from odvgkit.errors import OdvgError, ProblemLog
    from odvgkit.io import AtomicGroup, check_distinct, read_label_map, record_writer, write_label_map

    if to is not None and mapping is not None:
        raise OdvgError("--to and --mapping exclude each other", exit_code=2)
    if reverse and mapping is None:
        raise OdvgError("--reverse needs --mapping FILE", exit_code=2)
    lm = read_label_map(label_map)
    check_keys(lm, label_map)
    if to is not None:
        new_lm = read_label_map(to)
        check_keys(new_lm, to)
        table = by_name(lm, new_lm, label_map)
        mode = "by-name"
    elif mapping is not None:
        table, new_lm = read_mapping(mapping, reverse)
        missing = [k for k in lm if int(k) not in table]
        if missing:
            raise OdvgError(f"{label_map}: labels {', '.join(missing[:5])} are not in {mapping}: mismatched label map")
        mode = "reverse" if reverse else "mapping"
    else:
        new_lm, table = contiguous(lm)
        mode = "contiguous"
    stem = output.name.split(".")[0]
    lm_out = label_map_out or output.with_name(f"{stem}_label_map.json")
    map_out = output.with_name(f"{stem}_mapping.json")
    for o in (output, lm_out, map_out):
        check_distinct(o, [p for p in (input, label_map, to, mapping) if p is not None])
    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    with AtomicGroup() as group:
        with rep.progress(f"remap {input.name}", total=None) as adv, record_writer(group, output) as w:
            for rec in remap_records(input, table, new_lm, problems):
                w.write(rec)
                adv(1)
        write_label_map(lm_out, new_lm, group)
        if mode != "reverse":
            doc = mapping_document(lm, new_lm, table)
            group.path(map_out).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    rows = {"input": str(input), "mode": mode, "output": str(output), "label_map": str(lm_out),
            "records": w.count, "labels_in": len(lm), "labels_out": len(new_lm),
            "changed_ids": sum(1 for o, n in table.items() if o != n)}
    if mode != "reverse":
        rows["mapping"] = str(map_out)
    rep.summary("labels remap", rows, problems)
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(labels_app, name="labels", rich_help_panel="Curate")
