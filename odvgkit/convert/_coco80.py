"""COCO 2017's 80 detection class names in category-id order: how ``coco2odvg`` recognises real COCO.

Why: without ``-d``, a COCO-*format* file may be COCO itself or any custom export (Roboflow, CVAT,
Label Studio …). Real COCO keeps upstream's label-map name (``coco2017_label_map.json``); any other
category list gets a label map named after the output, so a custom dataset converted into the same
folder never replaces COCO's label map (or another custom one).
"""

from __future__ import annotations

COCO80_NAMES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)


def is_coco80(label_map: dict[str, str]) -> bool:
    """True when a label map (keys "0".."79") names exactly COCO 2017's classes in COCO's order."""
    return len(label_map) == len(COCO80_NAMES) and all(
        label_map.get(str(i)) == name for i, name in enumerate(COCO80_NAMES)
    )
