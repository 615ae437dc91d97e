"""``odvgkit explain featmap|boxam``: look inside a trained RTMDet or Grounding DINO.

The work is in :mod:`odvgkit_train.explain` (the ``train`` extra), imported inside the commands.
``--target-layers`` takes one or more layer names after it, as MMYOLO's demo scripts do
(``--target-layers backbone neck``); Typer options take one value each, so the group's argument
parser spreads the names over repeated options before Click sees them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from odvgkit.cli._common import Force, Json, Quiet, reporter
from odvgkit.errors import OdvgError, require

MULTI = ("--target-layers", "--target-layer")


def spread_multi(args: list[str], options: tuple[str, ...] = MULTI) -> list[str]:
    """``--target-layers a b c`` → ``--target-layers a --target-layers b --target-layers c``.

    Values run until the next option; an existing file ends them too (it is the IMAGE argument).
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok in options:
            j = i + 1
            while j < len(args) and not args[j].startswith("-") and (j == i + 1 or not Path(args[j]).is_file()):
                out += [tok, args[j]]
                j += 1
            if j == i + 1:
                out.append(tok)  # no value: let Click report it
            i = j
            continue
        out.append(tok)
        i += 1
    return out


class _ExplainGroup(TyperGroup):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_multi(list(args)))


explain_app = typer.Typer(
    cls=_ExplainGroup,
    help="Look inside a trained detector: feature maps per layer, box activation maps (Grad-CAM, EigenCAM).",
    no_args_is_help=True,
)

Image = Annotated[Path | None, typer.Argument(help="Image file.", show_default=False)]
Checkpoint = Annotated[Path | None, typer.Option("--checkpoint", help="Checkpoint (.pth) of RTMDet or Grounding DINO.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Model config (default: the one stored in the checkpoint).")
]
Texts = Annotated[
    str | None,
    typer.Option("--texts", help="Grounding DINO prompt: 'cat . dog', '$: coco' or a caption (not for RTMDet)."),
]
TextEncoder = Annotated[
    Path | None, typer.Option("--text-encoder", help="Local BERT directory, when the one in the config moved.")
]
Output = Annotated[Path | None, typer.Option("--output", "-o", help="PNG to write.")]
Preview = Annotated[bool, typer.Option("--preview-model", help="List the model's layer names and exit.")]


def _need_extra() -> None:
    for module in ("torch", "mmengine", "mmdet", "odvgkit_train"):
        require(module, "train")


def _threads() -> None:
    import os

    n = os.environ.get("OMP_NUM_THREADS")
    if n and n.isdigit():
        import torch

        torch.set_num_threads(int(n))


def _load(checkpoint: Path | None, config: Path | None, text_encoder: Path | None) -> Any:
    from odvgkit_train import explain

    if checkpoint is None and config is None:
        raise OdvgError("give --checkpoint CKPT (and --config CFG when the checkpoint carries no config)", 2)
    return explain.load(checkpoint, config=config, text_encoder=text_encoder)


def _preview(loaded: Any, rep: Any, json_mode: bool) -> None:
    from odvgkit_train import explain

    names = explain.layer_names(loaded.net)
    if json_mode:
        rep.summary("explain preview-model", {"model": loaded.model_type, "layers": len(names)},
                    tables={"layer list": [{"layer": n, "type": t} for n, t in names]})
        return
    for name, kind in names:
        typer.echo(f"{name}\t{kind}")


def _inputs(image: Path | None, output: Path | None) -> tuple[Path, Path]:
    from odvgkit.io.atomic import check_distinct

    if image is None:
        raise OdvgError("give the IMAGE to explain (or --preview-model to list layers)", 2)
    if output is None:
        raise OdvgError("give -o OUT.png", 2)
    if output.suffix.lower() != ".png":
        raise OdvgError(f"-o {output}: write a .png file", 2)
    check_distinct(output, [image])
    return image, output


@explain_app.command("featmap")
def featmap_cmd(
    image: Image = None,
    checkpoint: Checkpoint = None,
    config: ConfigOpt = None,
    texts: Texts = None,
    target_layers: Annotated[
        list[str] | None,
        typer.Option(*MULTI, help="Layers to draw (default: backbone), e.g. backbone neck backbone.stage4 neck.out_convs[2] encoder."),
    ] = None,
    channel_reduction: Annotated[
        str, typer.Option("--channel-reduction", help="squeeze_mean | select_max | none (top-k channels in a grid).")
    ] = "select_max",
    topk: Annotated[int, typer.Option("--topk", help="With --channel-reduction none: channels drawn (largest sum).")] = 4,
    arrangement: Annotated[
        tuple[int, int], typer.Option("--arrangement", help="ROWS COLS of the top-k grid.")
    ] = (2, 2),
    output: Output = None,
    preview_model: Preview = False,
    text_encoder: TextEncoder = None,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Draw target layers' feature maps over the image (mmengine's Visualizer.draw_featmap).

    Each spatial map a layer outputs gets one panel at the image's size (a neck gives one per
    level; Grounding DINO's encoder output is reshaped to one map per feature level); panels are
    arranged in a grid in OUT.png. With --channel-reduction none, each panel is a ROWS×COLS grid of
    the top-k channels. --preview-model lists the layer names.

    [bold]Examples[/bold]

      odvgkit explain featmap demo.jpg --checkpoint work/rtmdet/iter_300.pth --target-layers backbone neck -o fm.png

      odvgkit explain featmap demo.jpg --checkpoint work/rtmdet/iter_300.pth --target-layers neck.out_convs[2] --channel-reduction none --topk 9 --arrangement 3 3 -o top9.png

      odvgkit explain featmap demo.jpg --checkpoint gdino.pth --texts 'cat . dog' --target-layers neck encoder -o fm.png

      odvgkit explain featmap --checkpoint gdino.pth --preview-model
    """
    _need_extra()
    _threads()
    from odvgkit_train import explain

    rep = reporter(quiet, json_mode)
    loaded = _load(checkpoint, config, text_encoder)
    if preview_model:
        _preview(loaded, rep, json_mode)
        return
    img, out = _inputs(image, output)
    layers = target_layers or ["backbone"]
    with rep.progress("featmap", total=1, unit="images") as advance:
        maps = explain.featmaps(loaded, img, layers, texts=texts, channel_reduction=channel_reduction, topk=topk,
                                arrangement=arrangement)
        canvas = explain.compose([(m.label, m.panel) for m in maps])  # type: ignore[misc]
        explain.save_png(canvas, out)
        advance(1)
    rep.summary("explain featmap", {
        "model": loaded.model_type,
        "image": str(img),
        "target layers": " ".join(layers),
        "maps drawn": len(maps),
        "channel reduction": channel_reduction,
        "output": str(out),
        "output size": f"{canvas.shape[1]}x{canvas.shape[0]}",
    }, tables={"maps": [{"map": m.label, "channels": int(m.tensor.shape[0]),
                         "size": f"{m.tensor.shape[2]}x{m.tensor.shape[1]}"} for m in maps]})


@explain_app.command("boxam")
def boxam_cmd(
    image: Image = None,
    checkpoint: Checkpoint = None,
    config: ConfigOpt = None,
    texts: Texts = None,
    target_layers: Annotated[
        list[str] | None,
        typer.Option(*MULTI, help="Layer(s) whose activations explain the boxes (default: neck.out_convs[2] for RTMDet, neck for Grounding DINO)."),
    ] = None,
    method: Annotated[str, typer.Option("--method", help="gradcam | gradcam++ | eigencam (grad-free).")] = "gradcam",
    score_thr: Annotated[float, typer.Option("--score-thr", help="Explain the boxes scoring at least this.")] = 0.3,
    output: Output = None,
    preview_model: Preview = False,
    text_encoder: TextEncoder = None,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Box activation map: which pixels make the model predict its boxes, drawn over the image.

    Grad-CAM / Grad-CAM++ weigh the target layer's channels by the gradient of the predicted boxes'
    scores (RTMDet, and Grounding DINO in eval mode); EigenCAM needs no gradient (first principal
    component of the activations). The boxes at or above --score-thr are explained and drawn (the
    best box when none reaches it). The summary gives the share of the map inside the boxes.

    [bold]Examples[/bold]

      odvgkit explain boxam demo.jpg --checkpoint work/rtmdet/iter_300.pth --target-layer 'neck.out_convs[2]' -o am.png

      odvgkit explain boxam demo.jpg --checkpoint work/rtmdet/iter_300.pth --method eigencam --target-layers neck -o am.png

      odvgkit explain boxam demo.jpg --checkpoint gdino.pth --texts 'cat . dog' --target-layer neck --method gradcam++ -o am.png
    """
    _need_extra()
    _threads()
    from odvgkit_train import explain

    rep = reporter(quiet, json_mode)
    loaded = _load(checkpoint, config, text_encoder)
    if preview_model:
        _preview(loaded, rep, json_mode)
        return
    img, out = _inputs(image, output)
    layers = target_layers or (["neck"] if loaded.family == explain.GDINO else ["neck.out_convs[2]"])
    with rep.progress("boxam", total=1, unit="images") as advance:
        am = explain.boxam(loaded, img, layers, texts=texts, method=method, score_thr=score_thr)
        explain.save_png(am.image, out)  # type: ignore[arg-type]
        advance(1)
    if am.fallback_top1:
        rep.warn(f"no box scores ≥ {score_thr}; explained the best box ({am.scores[0]:.3f})")
    rep.summary("explain boxam", {
        "model": loaded.model_type,
        "image": str(img),
        "method": method,
        "target layers": " ".join(layers),
        "boxes explained": len(am.boxes),
        "activation inside boxes": round(explain.mass_inside(am.heat, *am.boxes), 4),
        "boxes' share of image area": round(explain.area_share(am.heat.shape, *am.boxes), 4),
        "output": str(out),
    }, tables={"boxes": [{"box": b, "label": lbl, "score": s} for b, lbl, s in zip(am.boxes, am.labels, am.scores, strict=True)]})


def register(app: typer.Typer) -> None:
    app.add_typer(explain_app, name="explain", rich_help_panel="Train")
