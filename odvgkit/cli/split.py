"""``odvgkit split``: a tiny subset (with its images and label map) or a train/val split."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, Strict, reporter

if TYPE_CHECKING:
    from odvgkit.errors import ProblemLog


def split(
    input: Annotated[Path, typer.Argument(help="ODVG file (.jsonl/.json[.gz]/.parquet).")],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Output directory.")],
    n: Annotated[
        int | None, typer.Option("-n", "--num", help="Records to sample (-1 = all). Default: all.")
    ] = None,
    ratio: Annotated[
        float | None,
        typer.Option("--ratio", help="Train fraction of a train/val split (e.g. 0.9); stratified by category for OD."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed → same bytes).")] = 0,
    label_map: Annotated[
        Path | None, typer.Option("--label-map", "-m", help="Label map to copy beside the subset (OD).")
    ] = None,
    images_root: Annotated[
        Path | None, typer.Option("--images-root", help="Image root of the input (needed to copy/link images).")
    ] = None,
    copy_images: Annotated[bool, typer.Option("--copy-images", help="Copy the subset's images to -o DIR/images/.")] = False,
    link_images: Annotated[
        bool, typer.Option("--link-images", help="Symlink the subset's images into -o DIR/images/.")
    ] = False,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Sample N records and/or split train/val, deterministically, with images and label map.

    Records keep their file order. -n -1 writes every record (upstream split_odvg.py writes N−1).
    With --ratio, OD files are split stratified by each image's rarest category (see
    docs/curate.md); VG files uniformly. Outputs: DIR/<name> (sample) or DIR/<stem>_train<ext> and
    DIR/<stem>_val<ext>, the label map, and DIR/images/<filename> with --copy-images/--link-images.

    [bold]Examples[/bold]

      odvgkit split o365_train_od.jsonl -n 200 --seed 1 -m o365v2_label_map.json --images-root data/o365 --copy-images -o tiny_o365/

      odvgkit split lvis_v1_train_od.jsonl --ratio 0.9 -m lvis_v1_label_map.json -o lvis_split/
    """
    import contextlib

    from odvgkit.curate.split import plan_split
    from odvgkit.errors import OdvgError, ProblemLog
    from odvgkit.io import (
        AtomicGroup,
        check_distinct,
        format_of,
        read_label_map,
        read_records,
        record_writer,
        write_label_map,
    )

    if copy_images and link_images:
        raise OdvgError("--copy-images and --link-images exclude each other", exit_code=2)
    if (copy_images or link_images) and images_root is None:
        raise OdvgError("--copy-images/--link-images need --images-root DIR", exit_code=2)
    if images_root is not None and not images_root.is_dir():
        raise OdvgError(f"{images_root}: image root is not a directory")
    if n is not None and n < -1:
        raise OdvgError(f"-n {n}: give a positive count, or -1 for every record", exit_code=2)
    if ratio is not None and not 0.0 < ratio < 1.0:
        raise OdvgError(f"--ratio {ratio}: must be between 0 and 1 (the train fraction, e.g. 0.9)", exit_code=2)
    fmt = format_of(input)
    lm = read_label_map(label_map) if label_map is not None else None
    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    with rep.progress(f"planning {input.name}", total=None) as _adv:
        selected, val, total, method = plan_split(input, n, ratio, seed, problems)
    ext = input.name[len(input.name.split(".")[0]):]
    stem = input.name.split(".")[0]
    if ratio is None:
        targets = {"all": output_dir / input.name}
    else:
        targets = {"train": output_dir / f"{stem}_train{ext}", "val": output_dir / f"{stem}_val{ext}"}
    lm_out = output_dir / label_map.name if label_map is not None else None
    for t in [*targets.values(), *([lm_out] if lm_out else [])]:
        check_distinct(t, [input, *([label_map] if label_map else [])])
    want = set(selected)
    counts = {k: 0 for k in targets}
    images: dict[str, int] = {}  # filename → line of its first record
    copied = unchanged = 0
    with AtomicGroup() as group:  # records and label map commit last, after every image is in place
        with contextlib.ExitStack() as stack:  # writers close before the group renames
            writers = {k: stack.enter_context(record_writer(group, p)) for k, p in targets.items()}
            for line, rec in read_records(input, problems):
                if line not in want:
                    continue
                key = "all" if ratio is None else ("val" if line in val else "train")
                writers[key].write(rec)
                counts[key] += 1
                if images_root is not None and (copy_images or link_images):
                    name = rec.get("filename")
                    if isinstance(name, str):
                        images.setdefault(name, line)
                    else:
                        problems.error("bad-filename", input, line, "filename",
                                       f"expected a file name, got {type(name).__name__}; image not copied")
        if lm is not None and lm_out is not None:
            write_label_map(lm_out, lm, group)
        if images_root is not None and (copy_images or link_images):
            # every image is checked before the first one is written: --strict stops with nothing written
            jobs = _image_jobs(images, images_root, output_dir / "images", input, problems)
            with rep.progress("copying images" if copy_images else "linking images", total=len(jobs), unit="images") as adv:
                for src, dst in jobs:
                    adv(1)
                    if _place_image(src, dst, link=link_images):
                        copied += 1
                    else:
                        unchanged += 1
    rows: dict[str, object] = {"input": str(input), "format": fmt, "records_in": total, "method": method, "seed": seed}
    for k, p in targets.items():
        rows[f"{k}_records" if k != "all" else "records_written"] = counts[k]
        rows[f"{k}_output" if k != "all" else "output"] = str(p)
    if lm_out is not None:
        rows["label_map"] = str(lm_out)
    if images_root is not None and (copy_images or link_images):
        rows["images_copied" if copy_images else "images_linked"] = copied
        if unchanged:
            rows["images_already_in_place"] = unchanged
    rep.summary("split", rows, problems)
    if problems.n_errors:
        raise typer.Exit(1)


def _image_jobs(
    images: dict[str, int], root: Path, img_dir: Path, source: Path, problems: ProblemLog
) -> list[tuple[Path, Path]]:
    """``(source image, target)`` pairs; a missing image or a filename that would land outside
    ``img_dir`` is the record's error (skipped and counted, or the end under --strict)."""
    from odvgkit.io.paths import inside_or_report

    jobs = []
    for name, line in images.items():
        dst = inside_or_report(img_dir, name, problems, source=source, where=line)
        if dst is None:
            continue
        src = root / name
        if not src.is_file():
            problems.error("missing-image", source, line, "filename", f"{src}: image not found")
            continue
        jobs.append((src, dst))
    return jobs


def _place_image(src: Path, dst: Path, link: bool) -> bool:
    """Copy (or symlink) one image atomically; False when the same image is already there.

    A different file at ``dst`` is replaced only with --force (the atomic commit refuses it).
    """
    import os
    import shutil

    from odvgkit.io import atomic_path
    from odvgkit.io.atomic import same_content, sweep, temp_name

    if link:
        want = os.path.realpath(src)
        if dst.is_symlink() and os.path.realpath(dst) == want:
            return False
        if os.path.lexists(dst):
            from odvgkit.errors import OdvgError
            from odvgkit.io.atomic import force_enabled

            if not force_enabled():
                raise OdvgError(f"{dst}: exists and is not a link to {want}; not replaced (pass --force to replace it)")
        dst.parent.mkdir(parents=True, exist_ok=True)
        sweep(dst.parent)
        tmp = dst.parent / temp_name(dst.name)
        tmp.symlink_to(want)
        try:
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return True
    if dst.is_file() and not dst.is_symlink() and same_content(src, dst):
        return False
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return True


def register(app: typer.Typer) -> None:
    app.command("split", rich_help_panel="Curate")(split)
