"""``odvgkit eval --suite``: the guide's tables in one command, cached and resumable, bad roots refused."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from odvgkit.io import read_label_map
from odvgkit_train import metrics as M
from odvgkit_train.suite_data import make_odinw_root, make_vg_suite_root
from odvgkit_train.suites import ODINW13, entries

from .conftest import run_cli
from .test_train_errors import _one_line_error


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _suite(suite: str, root: Path, ckpt: Path, bert: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli("eval", "--suite", suite, str(root), "--checkpoint", str(ckpt), "--text-encoder", str(bert), "--json",
                   *extra, check=check)


def _summary(proc: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cached(summary: dict, name: str) -> Path:
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_+" else "_" for c in name)
    (hit,) = Path(summary["cache"]).glob(f"{safe}.*.preds.jsonl")
    return hit


@pytest.fixture(scope="module")
def odinw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_odinw_root(tmp_path_factory.mktemp("odinw") / "odinw", "odinw13", n_images=2)


@pytest.fixture(scope="module")
def odinw_run(odinw: Path, trained, bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """One odinw13 suite run of the trained tiny model: (checkpoint copy, markdown, --json summary)."""
    work = tmp_path_factory.mktemp("odinw_run")
    ckpt = work / "ckpt.pth"
    shutil.copy2(trained.checkpoint, ckpt)
    md = work / "odinw13.md"
    return ckpt, md, _summary(_suite("odinw13", odinw, ckpt, bert_dir, "--markdown", str(md)))


def test_odinw13_suite_table_markdown_and_resume(odinw: Path, odinw_run, bert_dir: Path) -> None:
    ckpt, md, first = odinw_run
    assert first["datasets"] == 13 and first["datasets_from_cache"] == 0 and first["images"] == 26
    rows = first["rows"]
    assert [r["dataset"] for r in rows] == [n for n, *_ in ODINW13] + ["Average"]
    # every row equals pycocotools on the predictions the run cached, computed here independently
    expect = []
    for e in entries("odinw13", odinw):
        gts = _read(e.data)
        preds = _read(_cached(first, e.name))
        assert [p["filename"] for p in preds] == [g["filename"] for g in gts]
        expect.append(M.coco_map(gts, preds, read_label_map(e.label_map))["mAP"])
    assert [r["mAP"] for r in rows[:-1]] == pytest.approx(expect)
    assert rows[-1]["mAP"] == pytest.approx(sum(expect) / len(expect))
    assert any(v > 0 for v in expect)  # a trained model finds the boxes: not a table of zeros
    text = md.read_text()
    assert "ODinW-13" in text and "protocol: official" in text
    assert f"| Average | {100 * rows[-1]['mAP']:.1f} |" in text
    # an interrupted run: one dataset's predictions are missing → only that dataset is inferred again
    _cached(first, "Packages").unlink()
    second = _summary(_suite("odinw13", odinw, ckpt, bert_dir))
    assert second["datasets_from_cache"] == 12 and second["images"] == 26
    assert [r["mAP"] for r in second["rows"]] == pytest.approx([r["mAP"] for r in rows])


def test_suite_refuses_predictions_for_an_image_not_in_the_ground_truth(odinw: Path, odinw_run, bert_dir: Path, tmp_path: Path) -> None:
    ckpt, _, first = odinw_run
    mine = tmp_path / "ckpt.pth"
    shutil.copy2(ckpt, mine)  # same file, same times: the cache copied beside it is valid for it
    shutil.copytree(Path(first["cache"]).parent, tmp_path / "ckpt.pth.eval-cache")
    (hit,) = (tmp_path / "ckpt.pth.eval-cache" / "odinw13").glob("Aquarium.*.preds.jsonl")
    recs = _read(hit)
    recs[1]["filename"] = "not_in_gt.jpg"
    hit.write_text("".join(json.dumps(r) + "\n" for r in recs))
    md = tmp_path / "t.md"
    proc = _suite("odinw13", odinw, mine, bert_dir, "--markdown", str(md), check=False)
    _one_line_error(proc, "not_in_gt.jpg", "annotations_without_background_od.json:2")
    assert not md.exists()


def test_odinw_folder_missing_a_dataset(odinw: Path, tmp_path: Path, bert_dir: Path) -> None:
    root = tmp_path / "odinw"
    shutil.copytree(odinw, root)
    missing = root / "pothole" / "valid" / "annotations_without_background_od.json"
    missing.unlink()
    ckpt = tmp_path / "c.pth"
    ckpt.write_bytes(b"never loaded")
    proc = _suite("odinw13", root, ckpt, bert_dir, "--markdown", str(tmp_path / "t.md"), check=False)
    _one_line_error(proc, str(missing), "pothole")
    assert not (tmp_path / "t.md").exists() and not (tmp_path / "c.pth.eval-cache").exists()


def test_empty_suite_and_unknown_suite(tmp_path: Path, bert_dir: Path) -> None:
    ckpt = tmp_path / "c.pth"
    ckpt.write_bytes(b"never loaded")
    (tmp_path / "empty").mkdir()
    _one_line_error(_suite("odinw35", tmp_path / "empty", ckpt, bert_dir, check=False), "empty suite", "odinw35")
    proc = _suite("odinw99", tmp_path / "empty", ckpt, bert_dir, check=False)
    _one_line_error(proc, "odinw99", "odinw13")
    assert proc.returncode == 2
    proc = _suite("coco", tmp_path / "empty", ckpt, bert_dir, "-o", str(tmp_path / "p.jsonl"), check=False)
    _one_line_error(proc, "--predictions", "--suite")


@pytest.mark.parametrize("suite", ["refexp", "grefcoco", "flickr30k"])
def test_vg_suites_through_the_command(suite: str, trained, bert_dir: Path, tmp_path: Path) -> None:
    root = make_vg_suite_root(tmp_path / suite, suite, n_images=4)
    ckpt = tmp_path / "ckpt.pth"
    shutil.copy(trained.checkpoint, ckpt)
    extra: tuple[str, ...] = ("--score-thr", "0.1,0.3,0.5,0.7") if suite == "grefcoco" else ()
    extra += ("--cache", str(tmp_path / "cache"))
    for protocol in ("official", "mmdet"):
        summary = _summary(_suite(suite, root, ckpt, bert_dir, "--protocol", protocol, *extra))
        assert summary["protocol"] == protocol
        assert Path(summary["cache"]) == tmp_path / "cache" / suite
        assert summary["datasets_from_cache"] == (0 if protocol == "official" else summary["datasets"])
        # 'images' counts images; VG datasets have one record per expression / caption
        assert summary["records"] == sum(len(_read(e.data)) for e in entries(suite, root))
        assert summary["images"] == sum(len({g["filename"] for g in _read(e.data)}) for e in entries(suite, root))
        for e, row in zip(entries(suite, root), summary["rows"], strict=True):
            gts, preds = _read(e.data), _read(_cached(summary, e.name))
            if suite == "refexp":
                want = M.refexp_precision(gts, preds, protocol=protocol)
                assert [row[k] for k in ("P@1", "P@5", "P@10")] == pytest.approx([want[k] for k in ("P@1", "P@5", "P@10")])
                assert row["dataset"] == e.name
            elif suite == "grefcoco":
                for thr in (0.1, 0.3, 0.5, 0.7):
                    want = M.grefcoco_scores(gts, preds, score_thr=thr, protocol=protocol)
                    assert row[f"Pr@F1 ({thr:g})"] == pytest.approx(want["Pr@F1"])
                    assert row[f"N-acc ({thr:g})"] == pytest.approx(M.na(want["N-acc"]))
            else:
                want = M.flickr_recall(gts, preds)
                assert [row[k] for k in ("R@1", "R@5", "R@10")] == pytest.approx([want[k] for k in ("R@1", "R@5", "R@10")])
    if suite == "refexp":
        assert [r["dataset"] for r in summary["rows"]] == ["RefCOCO val", "RefCOCO testA", "RefCOCO testB", "RefCOCO+ val",
                                                          "RefCOCO+ testA", "RefCOCO+ testB", "RefCOCOg val", "RefCOCOg test"]


@pytest.mark.parametrize("suite", ["coco", "lvis-minival", "dod"])
def test_od_suites_through_the_command(suite: str, trained, bert_dir: Path, tmp_path: Path) -> None:
    from odvgkit_train.suite_data import make_coco_suite_root, make_d3_root, make_lvis_suite_root
    from odvgkit_train.suites import lvis_frequencies

    if suite == "coco":
        root = make_coco_suite_root(tmp_path / "coco")
    elif suite == "lvis-minival":
        root = make_lvis_suite_root(tmp_path / "lvis")
    else:
        root = make_d3_root(tmp_path / "d3", n_images=6)
        run_cli("convert", "dod2odvg", str(root), "--quiet")
    ckpt = tmp_path / "ckpt.pth"
    shutil.copy(trained.checkpoint, ckpt)
    md = tmp_path / "t.md"
    extra = ("--prompting", "concat,parallel") if suite == "dod" else ()
    summary = _summary(_suite(suite, root, ckpt, bert_dir, "--markdown", str(md), *extra))
    if suite == "dod":  # one row per prompting, as the guide's D³ table
        assert [r["prompting"] for r in summary["rows"]] == ["concat", "parallel"]
        par_entry, par_row = entries(suite, root, ("concat", "parallel"))[1], summary["rows"][1]
        want = M.dod_map(_read(par_entry.data), _read(_cached(summary, par_entry.name)), read_label_map(par_entry.label_map),
                         json.loads((root / "d3_settings.json").read_text()))
        assert {k: par_row[k] for k in want} == pytest.approx(want)
    e = entries(suite, root)[0]
    row = summary["rows"][0]
    gts, preds = _read(e.data), _read(_cached(summary, e.name))
    lm = read_label_map(e.label_map)
    if suite == "coco":
        want = M.coco_map(gts, preds, lm)
        assert [row[k] for k in ("mAP", "AP50", "AP75", "APs", "APm", "APl")] == pytest.approx(
            [want[k] for k in ("mAP", "AP50", "AP75", "APs", "APm", "APl")])
        assert want["mAP"] > 0
    elif suite == "lvis-minival":
        want = M.lvis_fixed_ap(gts, preds, lm, frequencies=lvis_frequencies(e.extra["lvis_json"]))
        assert [row[k] for k in ("APr", "APc", "APf", "AP")] == pytest.approx([want[k] for k in ("APr", "APc", "APf", "AP")])
        assert want["APc"] == M.NA and "n/a" in md.read_text()  # no common class has ground truth here
    else:
        want = M.dod_map(gts, preds, lm, json.loads((root / "d3_settings.json").read_text()))
        for key, value in want.items():
            assert row[key] == pytest.approx(value)
        assert row["FULL/very_long"] == -1.0 and "| concat |" in md.read_text() and "| parallel |" in md.read_text()
        assert "n/a" in md.read_text()
    assert summary["title"] in md.read_text()


def test_odinw35_layout_reads_the_override_files(tmp_path: Path) -> None:
    from odvgkit.convert.base import default_output, write_conversion
    from odvgkit.convert.coco import coco_to_odvg
    from odvgkit.convert.odinw import OVERRIDES, override_categories
    from odvgkit_train.suite_data import make_coco_style
    from odvgkit_train.suites import ODINW35

    root = tmp_path / "odinw"
    for k, (_, sub, ann_rel, img) in enumerate(ODINW35):
        original = root / sub / ann_rel.replace("new_annotations", "annotations")
        make_coco_style(original, root / sub / img, 1, seed=k)
    # the three override datasets: rewrite their categories as 'convert odinw-override' does
    # (upstream's three table paths; the generated files use category ids 1..3)
    tables = {rel: [{"id": i, "name": f"thing {i} (override)", "supercategory": "x"} for i in (1, 2, 3)] for rel in OVERRIDES}
    override_categories(root, tables)
    for _, sub, ann_rel, _ in ODINW35:
        ann = root / sub / ann_rel
        write_conversion(coco_to_odvg(ann, dataset="coco"), default_output(ann, "_od.json"), inputs=[ann],
                         label_map_path=ann.with_name(ann.name[:-5] + "_label_map.json"))
    got = entries("odinw35", root)
    assert len(got) == 35
    over = {e.name: e for e in got if e.data.name.startswith("new_")}
    assert sorted(over) == ["ChessPieces", "CottontailRabbits", "NorthAmericaMushrooms"]
    for e in over.values():
        assert set(read_label_map(e.label_map).values()) == {"thing 1 (override)", "thing 2 (override)", "thing 3 (override)"}
    assert all(e.images.is_dir() for e in got)


def test_caption_prompt_reaches_the_model(tmp_path: Path, bert_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ODinW's enhanced class prompts (MMDetection's caption_prompt) change the text the model encodes."""
    import torch

    from odvgkit_train.inference import load_model, predict_one
    from odvgkit_train.suite_data import make_coco_style
    from odvgkit_train.suites import CAPTION_PROMPTS

    make_coco_style(tmp_path / "a.json", tmp_path / "img", 1, seed=3)
    image = next((tmp_path / "img").iterdir())
    torch.manual_seed(0)
    net = load_model(None, model="tiny", text_encoder=bert_dir)
    seen: list[list[str]] = []
    encode = net.language_model.forward
    monkeypatch.setattr(net.language_model, "forward", lambda captions, *a, **k: (seen.append(list(captions)), encode(captions, *a, **k))[1])
    plain = predict_one(net, image, "", ["hand", "red box"], None)
    prompt = CAPTION_PROMPTS["odinw13"]["EgoHands"]
    enhanced = predict_one(net, image, "", ["hand", "red box"], None, caption_prompt=prompt)
    assert seen == [["hand. red box. "], ["hand of a person. red box. "]]
    assert not torch.equal(plain.scores, enhanced.scores)
