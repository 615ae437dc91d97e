"""A JSON document cut anywhere is one error with line and column (found by the fuzz test: a cut
right after a ',' between array elements was an IndexError)."""

from __future__ import annotations

import json

import pytest
from hardening._cli import CATS, coco_ann, coco_image, refused

DOC = json.dumps({"images": [coco_image(1), coco_image(2)], "annotations": [coco_ann(1, 1)], "categories": CATS})


@pytest.mark.parametrize("cut", [DOC.index("}, {") + 2, DOC.index("}, {") + 3, DOC.index('"annotations"') + 5, len(DOC) - 1])
def test_cut_document(work, cut):
    (work / "in.json").write_text(DOC[:cut])
    refused(work, "convert", "coco2odvg", "in.json", "-o", "out.jsonl", fragments=("in.json:1:", "malformed JSON"))
