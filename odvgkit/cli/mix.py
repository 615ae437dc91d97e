"""``odvgkit mix``: a mixture manifest of ODVG sources for the trainer (+ MMDetection snippet)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, Strict, reporter


def mix(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="PATH[:OPTIONS]: 0.3 / ratio=0.3, repeat=2, samples=N, cbt=0.001, label_map=F, root=DIR, name=N, kind=od|vg.",
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Manifest to write (.yaml/.yml or .json).")],
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed stored in the manifest.")] = 0,
    epoch_size: Annotated[
        int | None, typer.Option("--epoch-size", help="Samples per epoch when every source is a ratio (default: all records).")
    ] = None,
    emit_mmdet: Annotated[
        Path | None, typer.Option("--emit-mmdet", help="Also write an MMDetection config snippet (.py).")
    ] = None,
    plain_mmdet: Annotated[
        bool, typer.Option("--plain-mmdet", help="--emit-mmdet for an MMDetection without odvgkit (ODVGDataset, approximate sizes).")
    ] = False,
    materialize: Annotated[
        Path | None, typer.Option("--materialize", help="Also write one sampled epoch as a single ODVG file.")
    ] = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Build a mixture manifest: sources, label maps, image roots and per-epoch sample sizes.

    Each source is PATH[:OPTIONS]; exactly one of [bold]ratio[/bold] (fraction of the epoch; a bare
    number means ratio), [bold]repeat[/bold] (multiple of the source, default 1) or
    [bold]samples[/bold] (records per epoch); [bold]cbt[/bold]=t adds LVIS-style class-balanced
    sampling (OD). OD sources need label_map=FILE, and every label of the file must be in it. The
    manifest (schema in docs/curate.md) is what the trainer reads (odvgkit.curate.mix.load_manifest);
    --emit-mmdet writes the same mixture as an MMDetection config snippet (odvgkit's plugin:
    IndexedODVGDataset in MixtureSampledDataset, exact sizes; --plain-mmdet: ODVGDataset only,
    sizes approximated), --materialize one sampled epoch.

    [bold]Examples[/bold]

      odvgkit mix coco_od.jsonl:repeat=1,lm=coco_label_map.json,root=data/coco/train2017 goldg_vg.jsonl:samples=50000,root=data/gqa -o mix.yaml

      odvgkit mix target_od.jsonl:repeat=2,lm=target_lm.json o365_od.jsonl:0.2,lm=o365_lm.json,cbt=0.001 -o replay.yaml --emit-mmdet replay_datasets.py
    """
    from odvgkit.curate.mix import (
        Manifest,
        build_source,
        dump_manifest,
        manifest_dict,
        manifest_from_dict,
        parse_spec,
        resolve,
    )
    from odvgkit.curate.mix import emit_mmdet as emit
    from odvgkit.curate.mix import materialize as mat
    from odvgkit.errors import OdvgError, ProblemLog
    from odvgkit.io import AtomicGroup, check_distinct, record_writer, write_label_map

    if epoch_size is not None and epoch_size <= 0:
        raise OdvgError(f"--epoch-size {epoch_size}: must be positive", exit_code=2)
    if output.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise OdvgError(f"{output}: manifest must be .yaml, .yml or .json", exit_code=2)
    if emit_mmdet is not None and emit_mmdet.suffix != ".py":
        raise OdvgError(f"{emit_mmdet}: --emit-mmdet writes a Python config snippet: use a .py name", exit_code=2)
    specs = [parse_spec(s) for s in sources]  # all specs parse before any file is read
    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    built = []
    with rep.progress("reading sources", total=len(specs), unit="sources") as adv:
        for spec in specs:
            built.append(build_source(spec, problems))
            adv(1)
    resolved, size = resolve(built, epoch_size)
    manifest = Manifest(tuple(resolved), seed, size)
    inputs = [s.path for s in resolved] + [s.label_map for s in resolved if s.label_map]
    outs = [output] + [p for p in (emit_mmdet, materialize) if p is not None]
    for o in outs:
        check_distinct(o, inputs)
    text = dump_manifest(manifest, output)
    # what the trainer will see: the written text loads back to the same manifest
    reloaded = manifest_from_dict(manifest_dict(manifest, output.parent), output.resolve())
    written: dict[str, int] = {}
    lm_path: Path | None = None
    with AtomicGroup() as group:
        group.path(output).write_text(text, encoding="utf-8")
        if emit_mmdet is not None:
            group.path(emit_mmdet).write_text(emit(reloaded, plain=plain_mmdet), encoding="utf-8")
        if materialize is not None:
            with rep.progress("materializing", total=None) as _adv, record_writer(group, materialize) as w:
                merged, written = mat(reloaded, w, problems=problems)
            if merged is not None:
                stem = materialize.name.split(".")[0]
                lm_path = materialize.with_name(f"{stem}_label_map.json")
                check_distinct(lm_path, inputs)
                write_label_map(lm_path, merged, group)
    rows: dict[str, object] = {"manifest": str(output), "sources": len(resolved), "epoch_size": size, "seed": seed}
    if emit_mmdet is not None:
        rows["mmdet_snippet"] = str(emit_mmdet)
    if materialize is not None:
        rows["materialized"] = str(materialize)
        rows["materialized_records"] = sum(written.values())
        if lm_path is not None:
            rows["materialized_label_map"] = str(lm_path)
    table = [
        {"name": s.name, "kind": s.kind, "records": s.num_records,
         "weight": f"ratio={s.ratio:g}" if s.ratio is not None else f"samples={s.samples}" if s.samples is not None else f"repeat={s.repeat:g}",
         "per_epoch": s.samples_per_epoch,
         "share": f"{100 * s.samples_per_epoch / max(size, 1):.1f}%"}
        for s in resolved
    ]
    rep.summary("mix", rows, problems, tables={"sources_table": table})
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("mix", rich_help_panel="Curate")(mix)
