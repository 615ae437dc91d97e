"""A small generated OD + VG dataset (coloured boxes on noise) for tests, demos and benchmarks.

Objects are easy to tell apart (solid red / blue / green rectangles), so a tiny model's loss falls
within a few dozen iterations on a CPU. Written through odvgkit's own writers, as real data is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from odvgkit.io import write_label_map, write_records

COLOURS = {"red box": (220, 30, 30), "blue box": (30, 30, 220), "green box": (30, 200, 30)}


@dataclass
class DemoData:
    od_file: Path
    vg_file: Path
    label_map: Path
    image_root: Path


def make_demo_dataset(root: str | Path, n_images: int = 16, size: int = 96, seed: int = 0) -> DemoData:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    root = Path(root)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    names = list(COLOURS)
    od, vg = [], []
    for i in range(n_images):
        w, h = size + rng.randrange(0, size // 3), size
        img = Image.new("RGB", (w, h), tuple(rng.randrange(90, 160) for _ in range(3)))
        draw = ImageDraw.Draw(img)
        instances = []
        for _ in range(rng.randint(1, 2)):
            label = rng.randrange(len(names))
            bw, bh = rng.randrange(w // 4, w // 2), rng.randrange(h // 4, h // 2)
            x1, y1 = rng.randrange(0, w - bw), rng.randrange(0, h - bh)
            box = [float(x1), float(y1), float(x1 + bw), float(y1 + bh)]
            draw.rectangle([x1, y1, x1 + bw - 1, y1 + bh - 1], fill=COLOURS[names[label]])
            instances.append({"bbox": box, "label": label, "category": names[label]})
        name = f"img_{i:04d}.jpg"
        img.save(images / name, quality=95)
        od.append({"filename": name, "height": h, "width": w, "detection": {"instances": instances}})
        caption, regions = "", []
        for k, inst in enumerate(instances):
            if k:
                caption += " and "
            caption += "a "
            start = len(caption)
            caption += inst["category"]
            regions.append({"bbox": inst["bbox"], "phrase": inst["category"], "tokens_positive": [[start, len(caption)]]})
        vg.append({"filename": name, "height": h, "width": w, "grounding": {"caption": caption + ".", "regions": regions}})
    data = DemoData(root / "demo_od.jsonl", root / "demo_vg.jsonl", root / "demo_label_map.json", images)
    write_records(data.od_file, od)
    write_records(data.vg_file, vg)
    write_label_map(data.label_map, {str(i): n for i, n in enumerate(names)})
    return data
