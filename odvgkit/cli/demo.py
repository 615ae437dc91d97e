"""``odvgkit demo``: the main job, end to end, on a sample that ships inside the package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, reporter


def demo(
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where to write the demo outputs.")] = Path("odvgkit-demo"),
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Convert the bundled COCO sample to ODVG, validate it and summarise it.

    Runs what 'odvgkit convert coco2odvg' and 'odvgkit validate' do on 6 real COCO val2017
    images' annotations (136 boxes), shipped inside the package, and writes the ODVG file and its
    label map into --output-dir.

    [bold]Examples[/bold]

      odvgkit demo

      odvgkit demo -o demo-out --json
    """
    from collections import Counter
    from importlib import resources

    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.coco import coco_to_odvg
    from odvgkit.errors import ProblemLog
    from odvgkit.io import iter_records, read_label_map
    from odvgkit.validate import validate_file

    rep = reporter(quiet, json_mode)
    sample = Path(str(resources.files("odvgkit") / "data" / "sample" / "instances_val2017_sample.json"))
    out = output_dir / "instances_val2017_sample_od.json"
    lm_path = output_dir / "coco2017_label_map.json"
    rep.info(f"1/3 convert  {sample.name} → {out}")
    problems = ProblemLog(strict=True)
    conv = coco_to_odvg(sample, problems=problems)
    write_conversion(conv, out, inputs=[sample], label_map_path=lm_path)
    rep.info(f"2/3 validate {out} against {lm_path}")
    summary = validate_file(out, problems, read_label_map(lm_path), lm_path)
    rep.info("3/3 summarise")
    per_class = Counter(inst["category"] for rec in iter_records(out) for inst in rec["detection"]["instances"])
    rows = {
        "output": str(out),
        "label_map": str(lm_path),
        "images": conv.stats["images"],
        "boxes_kept": conv.stats["boxes"],
        "boxes_dropped_crowd": conv.stats["boxes_dropped:crowd"],
        "validation_errors": problems.n_errors,
        "validation_warnings": problems.n_warnings,
        "records_validated": summary.records,
    }
    top = [{"category": name, "boxes": n} for name, n in per_class.most_common(5)]
    rep.summary("odvgkit demo", rows, problems, tables={"top categories": top})
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo", rich_help_panel="Start here")(demo)
