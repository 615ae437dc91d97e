"""The ``odvgkit stats --plot`` figure: one page that shows a dataset's shape at a glance.

Panels (only those with data): class frequency (top-k, log axis, with the long tail summarised),
boxes per image, box size (relative side, COCO S/M/L marked on the absolute scale), and for
grounding data caption tokens against the 256-token limit and phrases per caption. Rendered with
matplotlib's Agg backend (no display needed); output deterministic (no timestamps in metadata).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np

from odvgkit.curate.stats import ABS_BINS, REL_BINS, Stats, describe

_BLUE = "#3b6ea8"
_ORANGE = "#d9822b"
_RED = "#c23b22"
_GREY = "#8a8a8a"


def _int_hist(ax, counter: Counter[int], color: str, xlabel: str, cap: int | None = None, ylabel: str = "images") -> None:
    """Histogram of an integer distribution; its summary goes into the axis label (never over bars)."""
    from matplotlib.ticker import MaxNLocator

    if not counter:
        return
    d = describe(counter)
    hi = max(cap if cap is not None else max(counter), 1)
    over = sum(v for k, v in counter.items() if k > hi)
    xs = np.arange(0, hi + 1)
    ys = np.array([counter.get(int(x), 0) for x in xs])
    if hi > 60:  # bin wide ranges
        width = math.ceil((hi + 1) / 50)
        edges = np.arange(0, hi + width + 1, width)
        ys = np.histogram(np.repeat(xs, ys), edges)[0]
        ax.bar(edges[:-1], ys, width=width, align="edge", color=color, edgecolor="white", linewidth=0.4)
    else:
        ax.bar(xs, ys, width=0.85, color=color)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.axvline(d["median"], color="black", linestyle="--", linewidth=1)
    text = f"mean {d['mean']:.1f} · median {d['median']} (dashed) · p95 {d['p95']} · max {d['max']}"
    if over:
        text += f"\n{over:,} above {hi} not shown"
    ax.set_xlabel(f"{xlabel}\n{text}")
    ax.set_ylabel(ylabel)


def _cap(counter: Counter[int]) -> int:
    """Show up to the 99.5th percentile so one outlier does not squash the histogram."""
    total = sum(counter.values())
    acc = 0
    for k in sorted(counter):
        acc += counter[k]
        if acc >= 0.995 * total:
            return max(k, 1)
    return max(counter)


def render(st: Stats, path: Path, title: str, top: int = 25, fmt: str | None = None) -> None:
    """Draw the figure for ``st`` into ``path`` (``fmt`` png/svg/pdf; default: by extension)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rc = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
          "svg.fonttype": "none", "svg.hashsalt": "odvgkit"}  # SVG text stays text; stable ids
    with plt.rc_context(rc):
        _render(st, path, title, top, fmt)


def _render(st: Stats, path: Path, title: str, top: int, fmt: str | None) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from odvgkit.tokenizer import MAX_TOKENS

    names = st.categories if st.od_records else st.phrases
    others = ["per_image", "rel_size", "abs_size"]
    if names:
        others.append("longtail")
    if st.vg_records:
        others += ["tokens", "phrases"]
    right = 2 if len(others) <= 4 else 3
    nrows = 2
    ncols = right + (1 if names else 0)
    fig = plt.figure(figsize=(5.6 * ncols, 9.5), dpi=100)
    ratios = ([1.25] if names else []) + [1.0] * right
    grid = fig.add_gridspec(nrows, ncols, hspace=0.38, wspace=0.32, width_ratios=ratios)
    kind = {"od": "detection", "vg": "grounding", "mixed": "detection + grounding"}[st.kind]
    fig.suptitle(
        f"{title} — {st.records:,} images ({kind}), {st.boxes:,} boxes"
        + (f", {len(st.categories):,} classes" if st.od_records else f", {len(st.phrases):,} distinct phrases"),
        fontsize=13, fontweight="bold",
    )
    if names:
        ax = fig.add_subplot(grid[:, 0])
        items = sorted(names.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = items[:top]
        rest = items[top:]
        labels = [n if len(n) <= 28 else n[:27] + "…" for n, _ in shown]
        vals = [c for _, c in shown]
        y = np.arange(len(shown))
        ax.barh(y, vals, color=_BLUE)
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        what = "boxes per class" if st.od_records else "regions per phrase"
        log = bool(vals) and max(vals) / max(1, min(vals)) > 30
        if log:
            ax.set_xscale("log")
            ax.set_xlim(0.8, max(vals) * 4)
        else:
            ax.set_xlim(0, max(vals or [1]) * 1.18)
        ax.set_xlabel(f"{what}{' (log)' if log else ''}")
        ax.set_title(f"Top {len(shown)} {'classes' if st.od_records else 'phrases'}", loc="left", fontweight="bold")
        for yi, v in zip(y, vals, strict=True):
            ax.text(v, yi, f" {v:,}", va="center", fontsize=7)
        if rest:
            counts = np.array([c for _, c in rest])
            ax.text(0.98, 0.02, f"+ {len(rest):,} more: {counts.sum():,} in total,\nmedian {int(np.median(counts)):,}, "
                    f"{int((counts < 10).sum()):,} with < 10",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
                    bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
    offset = 1 if names else 0
    for slot, panel in enumerate(others):
        ax = fig.add_subplot(grid[slot // right, offset + slot % right])
        if panel == "per_image":
            _int_hist(ax, st.boxes_per_image, _BLUE, "boxes per image", _cap(st.boxes_per_image))
            ax.set_title("Boxes per image", loc="left", fontweight="bold")
        elif panel == "rel_size":
            centers = np.sqrt(REL_BINS[:-1] * REL_BINS[1:])
            ax.bar(REL_BINS[:-1], st.rel_hist, width=np.diff(REL_BINS), align="edge", color=_ORANGE, edgecolor="white", linewidth=0.3)
            ax.set_xscale("log")
            ax.set_xlabel("relative box side  √(box area / image area)")
            ax.set_ylabel("boxes")
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title("Box size relative to image", loc="left", fontweight="bold")
            if st.rel_hist.sum():
                med = centers[np.searchsorted(np.cumsum(st.rel_hist), st.rel_hist.sum() / 2)]
                ax.axvline(med, color="black", linestyle="--", linewidth=1)
                ax.set_xlabel(f"relative box side  √(box area / image area)\nmedian {med:.3f} (dashed)")
        elif panel == "abs_size":
            ax.bar(ABS_BINS[:-1], st.abs_hist, width=np.diff(ABS_BINS), align="edge", color=_ORANGE, edgecolor="white", linewidth=0.3)
            ax.set_xscale("log")
            ax.set_xlabel("box side √area (pixels)")
            ax.set_ylabel("boxes")
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title("Box size in pixels (COCO small / medium / large)", loc="left", fontweight="bold")
            for edge in (32, 96):
                ax.axvline(edge, color=_GREY, linestyle=":", linewidth=1)
            total = max(1, sum(st.area_classes.values()))
            ax.text(0.98, 0.95, "\n".join(f"{k} {100 * st.area_classes.get(k, 0) / total:.1f}%"
                                           for k in ("small", "medium", "large")),
                    transform=ax.transAxes, ha="right", va="top", fontsize=8,
                    bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
        elif panel == "longtail":
            counts = np.array(sorted(names.values(), reverse=True))
            ranks = np.arange(1, len(counts) + 1)
            from matplotlib.ticker import FuncFormatter, NullFormatter

            ax.plot(ranks, counts, color=_BLUE, linewidth=1.5, marker="." if len(counts) < 100 else None)
            ax.set_xscale("log")
            if counts[0] / max(1, counts[-1]) >= 10:  # a linear axis reads better within one decade
                ax.set_yscale("log")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
                axis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("class rank" if st.od_records else "phrase rank")
            ax.set_ylabel("boxes" if st.od_records else "regions")
            ax.set_title("Long tail (rank vs frequency)", loc="left", fontweight="bold")
            share = counts[: max(1, len(counts) // 10)].sum() / max(1, counts.sum())
            ax.text(0.98, 0.95, f"top 10% of {'classes' if st.od_records else 'phrases'} hold {100 * share:.0f}%\n"
                    f"{int((counts == 1).sum()):,} seen once", transform=ax.transAxes, ha="right", va="top", fontsize=8,
                    bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
        elif panel == "tokens":
            if st.caption_tokens:
                over = sum(v for k, v in st.caption_tokens.items() if k > MAX_TOKENS)
                cap = max(st.caption_tokens) if over else _cap(st.caption_tokens)
                _int_hist(ax, st.caption_tokens, _BLUE, "BERT tokens per caption (incl. [CLS]/[SEP])", cap, "captions")
                if over:
                    ax.set_yscale("log")
                    ax.axvline(MAX_TOKENS, color=_RED, linewidth=1.5)
                    ax.text(MAX_TOKENS, 0.97, f" {over:,} over the {MAX_TOKENS}-token limit →", color=_RED,
                            transform=ax.get_xaxis_transform(), ha="right", va="top", fontsize=8)
                    ax.set_ylabel("captions (log)")
                else:
                    ax.text(0.98, 0.95, f"all within the {MAX_TOKENS}-token limit", color="#2e7d32",
                            transform=ax.transAxes, ha="right", va="top", fontsize=8)
                ax.set_title("Caption length (tokens)", loc="left", fontweight="bold")
            else:
                _int_hist(ax, st.caption_words, _BLUE, "words per caption", _cap(st.caption_words), "captions")
                ax.set_title("Caption length (words)", loc="left", fontweight="bold")
        elif panel == "phrases":
            _int_hist(ax, st.phrases_per_caption, _BLUE, "phrases (regions) per caption", _cap(st.phrases_per_caption), "captions")
            ax.set_title("Phrases per caption", loc="left", fontweight="bold")
    fmt = fmt or path.suffix.lstrip(".").lower() or "png"
    fig.savefig(path, format=fmt, bbox_inches="tight", metadata=_metadata(fmt))
    plt.close(fig)


def _metadata(fmt: str) -> dict[str, str | None]:
    """No software version or dates in the file, so the same data gives the same bytes."""
    if fmt == "png":
        return {"Software": None}
    if fmt == "svg":
        return {"Date": None}
    if fmt == "pdf":
        return {"CreationDate": None, "ModDate": None, "Producer": None}
    return {}
