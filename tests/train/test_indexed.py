"""``odvgkit index`` + ``IndexedODVGDataset``: mmdet's ``ODVGDataset`` semantics without the records in memory."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from .conftest import run_cli
from .test_train_errors import _one_line_error

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """tiny_coco converted by the real CLI (a real fixture: crowd, tiny and out-of-image boxes included)."""
    tmp = tmp_path_factory.mktemp("coco")
    src = SHARED / "tiny_coco" / "annotations" / "instances_val2017.json"
    run_cli("convert", "coco2odvg", str(src), "-o", str(tmp / "coco_od.jsonl"), "--label-map", str(tmp / "coco_lm.json"), "-q")
    return tmp / "coco_od.jsonl", tmp / "coco_lm.json"


def _edge_files(coco: tuple[Path, Path], demo, tmp: Path) -> tuple[Path, Path]:
    """The real records plus the boxes ODVGDataset drops or keeps at the edge (converters never write them)."""
    od, vg = tmp / "edge_od.jsonl", tmp / "edge_vg.jsonl"
    with od.open("w") as fh:
        for i, line in enumerate(coco[0].open()):
            rec = json.loads(line)
            w, h = rec["width"], rec["height"]
            extra = [[-10, -10, -5, -5], [5, 5, 5.5, 20], [w - 0.5, 10, w + 20, 30], [10, 10, 4, 40], [0, 0, w, h]]
            rec["detection"]["instances"] += [{"bbox": b, "label": str(i % 3) if j % 2 else i % 3} for j, b in enumerate(extra)]
            if i == 1:
                rec["detection"] = {}
            rec["extra_field"] = {"kept": True}
            fh.write(json.dumps(rec) + "\n")
    with vg.open("w") as fh:
        for i, line in enumerate(demo.vg_file.open()):
            rec = json.loads(line)
            regions = rec["grounding"]["regions"]
            regions.append({"bbox": [[-9, -9, -1, -1], [1, 1, 1.2, 9]], "phrase": "gone", "tokens_positive": [[0, 1]]})
            regions.append({"bbox": [[-9, -9, -1, -1], [1, 1, 30, 40]], "phrase": "half", "tokens_positive": [[0, 1]]})
            fh.write(json.dumps(rec) + ("\r\n" if i == 2 else "\n"))
    return od, vg


def _pair(ann: Path, label_map: Path | None, **kw):
    from mmdet.datasets import ODVGDataset

    import odvgkit_train.mmdet_plugin  # noqa: F401
    from odvgkit_train.indexed import IndexedODVGDataset

    args = dict(data_root="", ann_file=str(ann), data_prefix=dict(img="imgs/"), return_classes=True, pipeline=[],
                **({"label_map_file": str(label_map)} if label_map else {}), **kw)
    return ODVGDataset(**args), IndexedODVGDataset(**args)


def _infos(ds) -> list[dict]:
    return [ds.get_data_info(i) for i in range(len(ds))]


def test_data_info_equal_to_odvgdataset(coco, demo, tmp_path: Path) -> None:
    from odvgkit.index import build_index

    edge_od, edge_vg = _edge_files(coco, demo, tmp_path)
    for ann in (coco[0], demo.od_file, demo.vg_file, edge_od, edge_vg):
        res = build_index(ann)
        assert res.records == sum(1 for _ in ann.open())
    for ann, lm in ((coco[0], coco[1]), (demo.od_file, demo.label_map), (demo.vg_file, None), (edge_od, coco[1]),
                    (edge_vg, None)):
        for kw in ({}, {"need_text": False}, {"filter_cfg": dict(filter_empty_gt=True, min_size=32)},
                   {"indices": [3, 0, 5]}, {"indices": -4}, {"serialize_data": False}):
            if lm is None and "need_text" in kw:
                continue
            ref, ind = _pair(ann, lm, **kw)
            assert len(ref) == len(ind) > 0
            assert _infos(ref) == _infos(ind), (ann, kw)
            assert ref.get_data_info(-1) == ind.get_data_info(-1)
            assert [ref.get_cat_ids(i) for i in range(len(ref))] == [ind.get_cat_ids(i) for i in range(len(ind))]
        sub_ref, sub_ind = ref.get_subset([2, 1]), ind.get_subset([2, 1])
        assert _infos(sub_ref) == _infos(sub_ind)
    # the edge files do exercise ODVGDataset's box rule (some boxes dropped, some kept)
    raw = [json.loads(line) for line in edge_od.open()]
    kept = sum(len(i["instances"]) for i in _infos(_pair(edge_od, coco[1])[1]))
    assert len(raw) * 2 < kept < sum(len(r["detection"].get("instances", [])) for r in raw)


def test_detector_dataset_equal(demo) -> None:
    import odvgkit_train.mmdet_plugin  # noqa: F401
    from odvgkit.index import build_index
    from odvgkit_train.detector_registry import ODVGDetectionDataset
    from odvgkit_train.indexed import IndexedODVGDetectionDataset

    build_index(demo.od_file, force=True)
    names = json.loads(demo.label_map.read_text())
    args = dict(data_root="", ann_file=str(demo.od_file), label_map_file=str(demo.label_map), need_text=False,
                metainfo=dict(classes=[names[k] for k in sorted(names, key=int)]), data_prefix=dict(img=""),
                return_classes=True, pipeline=[])
    assert _infos(ODVGDetectionDataset(**args)) == _infos(IndexedODVGDetectionDataset(**args))
    with pytest.raises(ValueError, match="is not a class index") as a:
        ODVGDetectionDataset(**{**args, "metainfo": dict(classes=["x"])})
    with pytest.raises(ValueError, match="is not a class index") as b:
        IndexedODVGDetectionDataset(**{**args, "metainfo": dict(classes=["x"])})
    assert str(a.value) == str(b.value)


def test_mixture_repeat_factors_from_columns(coco) -> None:
    from odvgkit.index import build_index
    from odvgkit_train.datasets import MixtureSampledDataset, repeat_factors, repeat_factors_csr

    build_index(coco[0], force=True)
    ref, ind = _pair(coco[0], coco[1])
    for t in (0.001, 0.1, 0.5):
        slow = repeat_factors([set(ref.get_cat_ids(i)) for i in range(len(ref))], t)
        fast = repeat_factors_csr(*ind.label_csr(), t)
        assert fast.tolist() == slow  # bit for bit
        assert t < 0.5 or max(slow) > 1.0
        a = MixtureSampledDataset(ref, samples=37, seed=3, name="coco", class_balanced_threshold=t)
        calls: list[int] = []
        index = ind._index
        index.read = lambda i, _read=index.read, _calls=calls: _calls.append(i) or _read(i)  # type: ignore[method-assign]
        b = MixtureSampledDataset(ind, samples=37, seed=3, name="coco", class_balanced_threshold=t)
        del index.read
        assert not calls  # no record decoded to draw the repeats
        assert list(a.indices) == list(b.indices) and len(b) == 37
        assert a.get_data_info(5) == b.get_data_info(5)
    sub = _pair(coco[0], coco[1], indices=[4, 1, 2])
    assert repeat_factors_csr(*sub[1].label_csr(), 0.3).tolist() == \
        repeat_factors([set(sub[0].get_cat_ids(i)) for i in range(3)], 0.3)


def _big_vg(demo, tmp_path: Path) -> Path:
    """A VG file > 128 KiB (its middle outside the hashed ends)."""
    lines = demo.vg_file.read_text().splitlines()
    big = tmp_path / "big_vg.jsonl"
    big.write_text("\n".join(lines * (1600 // len(lines) + 1)) + "\n")
    assert big.stat().st_size > 3 * 64 * 1024
    return big


def test_stale_foreign_truncated_index_one_line(demo, tmp_path: Path) -> None:
    vg = tmp_path / "vg.jsonl"
    shutil.copy(demo.vg_file, vg)
    proc = run_cli("index", str(vg), "--json")
    summary = json.loads(proc.stdout)
    assert summary["records"] == 16 and summary["boxes"] > 0
    idx = Path(summary["indexes"][0]["index"])
    assert idx == tmp_path / "vg.jsonl.odvgidx"
    run_cli("index", str(vg), "--check", "-q")
    again = run_cli("index", str(vg), check=False)  # identical bytes: not an error
    assert again.returncode == 0
    # stale: the file changed after indexing
    with vg.open("a") as fh:
        fh.write(demo.vg_file.read_text().splitlines()[0] + "\n")
    _one_line_error(run_cli("index", str(vg), "--check", check=False), str(vg), "changed after it was indexed", "--force")
    _one_line_error(run_cli("index", str(vg), check=False), str(idx))  # rewriting needs --force
    from odvgkit.errors import OdvgError
    from odvgkit_train.indexed import IndexedODVGDataset

    with pytest.raises(OdvgError, match="changed after it was indexed"):
        IndexedODVGDataset(data_root="", ann_file=str(vg), return_classes=True, pipeline=[])
    run_cli("index", str(vg), "--force", "-q")
    run_cli("index", str(vg), "--check", "-q")
    # an index of another file
    other = tmp_path / "other.jsonl"
    shutil.copy(demo.vg_file, other)
    run_cli("index", str(other), "-q")
    shutil.copy(tmp_path / "other.jsonl.odvgidx", idx)
    _one_line_error(run_cli("index", str(vg), "--check", check=False), str(idx), "other.jsonl", str(vg))
    # truncated, corrupt, not an index
    run_cli("index", str(vg), "--force", "-q")
    data = idx.read_bytes()
    idx.write_bytes(data[:-10])
    _one_line_error(run_cli("index", str(vg), "--check", check=False), str(idx), "truncated")
    idx.write_bytes(data[:12])
    _one_line_error(run_cli("index", str(vg), "--check", check=False), str(idx), "truncated")
    idx.write_bytes(data[:-200] + bytes([data[-200] ^ 0xFF]) + data[-199:])
    _one_line_error(run_cli("index", str(vg), "--check", check=False), str(idx), "corrupt")
    idx.write_text("hello")
    _one_line_error(run_cli("index", str(vg), "--check", check=False), str(idx), "truncated")
    idx.write_bytes(b"x" * 100)
    _one_line_error(run_cli("index", str(vg), "--check", check=False), str(idx), "not an odvgkit index")
    idx.unlink()
    _one_line_error(run_cli("index", str(vg), "--check", check=False), str(vg), "no index")
    gz = tmp_path / "vg.jsonl.gz"
    gz.write_bytes(b"")
    _one_line_error(run_cli("index", str(gz), check=False), str(gz), "plain JSON Lines")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(demo.vg_file.read_text().splitlines()[0] + "\n\n")
    _one_line_error(run_cli("index", str(bad), check=False), f"{bad}:2", "blank line")


def test_record_no_longer_matching_its_offset(demo, tmp_path: Path) -> None:
    from odvgkit.errors import OdvgError
    from odvgkit.index import build_index
    from odvgkit_train.indexed import IndexedODVGDataset

    big = _big_vg(demo, tmp_path)
    build_index(big)
    st = big.stat()
    raw = bytearray(big.read_bytes())
    lines = raw.split(b"\n")
    mid = len(lines) // 2
    start = sum(len(x) + 1 for x in lines[:mid])
    caption_at = raw.index(b'"caption":"', start) + len(b'"caption":"')
    raw[caption_at] = ord("X") if raw[caption_at] != ord("X") else ord("Y")  # same size, same ends
    big.write_bytes(bytes(raw))
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))
    ds = IndexedODVGDataset(data_root="", ann_file=str(big), data_prefix=dict(img=""), return_classes=True,
                            pipeline=[])  # stamp still matches
    row = raw[:caption_at].count(b"\n")
    assert ds.get_data_info(row - 1)["text"]
    with pytest.raises(OdvgError) as err:
        ds.get_data_info(row)
    assert str(err.value).startswith(f"{big}:{row + 1}: record does not match its index entry")
    assert "\n" not in str(err.value)
    # read by a data-loader worker: PyTorch re-raises it with the worker's traceback in the message;
    # what reaches the CLI's error line is still the one line
    from torch.utils.data import DataLoader, Subset

    loader = DataLoader(Subset(ds, [row]), batch_size=1, num_workers=1, collate_fn=_ident, multiprocessing_context="fork")
    with pytest.raises(OdvgError) as err:
        next(iter(loader))
    assert str(err.value) == f"{big}:{row + 1}: " + str(err.value).split(": ", 1)[1]
    assert str(err.value).startswith(f"{big}:{row + 1}: record does not match its index entry")
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)


def test_generated_config_uses_index_and_trains_loss_for_loss(demo, bert_dir, tmp_path: Path) -> None:
    """Same seed, same data: the indexed run's losses are ODVGDataset's, iteration for iteration."""
    from odvgkit_train.api import read_losses

    runs = {}
    for flag in ("--index", "--no-index"):
        work = tmp_path / flag.strip("-")
        proc = run_cli("train", "pretrain", str(demo.od_file), str(demo.vg_file), "--label-map", str(demo.label_map),
                       "--image-root", str(demo.image_root), "--model", "tiny", "--text-encoder", str(bert_dir),
                       "--work-dir", str(work), "--max-iters", "4", "--batch-size", "2", "--num-workers", "0",
                       "--log-interval", "1", "--seed", "7", "--json", flag)
        assert json.loads(proc.stdout.strip().splitlines()[-1])["iterations"] == 4
        text = (work / "config.py").read_text()
        logs = sorted(work.glob("*/vis_data/scalars.json"))
        runs[flag] = (text, read_losses(logs[-1].parent.parent))
    assert runs["--index"][0].count("type='IndexedODVGDataset'") == 2
    assert "IndexedODVGDataset" not in runs["--no-index"][0]
    assert Path(str(demo.od_file) + ".odvgidx").is_file()
    losses, ref = runs["--index"][1], runs["--no-index"][1]
    assert len(losses) == 4 and losses == ref


def test_index_summary_counts(coco) -> None:
    proc = run_cli("index", str(coco[0]), "--force", "--json")
    summary = json.loads(proc.stdout)
    raw = [json.loads(line) for line in coco[0].open()]
    assert summary["records"] == len(raw)
    assert summary["boxes"] == sum(len(r["detection"]["instances"]) for r in raw)
    assert np.isfinite(summary["seconds"])


def _ident(batch):
    return batch


def test_workers_and_pickling_read_the_same_records(demo) -> None:
    """Forked data-loader workers share the mapped index; a pickled copy (spawn) re-opens and re-checks it."""
    import pickle

    from torch.utils.data import DataLoader

    from odvgkit.index import build_index

    build_index(demo.vg_file, force=True)
    _, ind = _pair(demo.vg_file, None)
    direct = [ind.get_data_info(i) for i in range(len(ind))]
    loader = DataLoader(ind, batch_size=4, num_workers=2, collate_fn=_ident, multiprocessing_context="fork")
    assert [info for batch in loader for info in batch] == direct  # pipeline=[]: __getitem__ is the data_info
    copy = pickle.loads(pickle.dumps(ind))
    assert copy._index is not ind._index and _infos(copy) == direct


def test_detector_config_uses_the_indexed_dataset(demo, tmp_path: Path) -> None:
    from mmdet.registry import DATASETS
    from mmengine.config import Config

    import odvgkit_train.mmdet_plugin  # noqa: F401  (what the config's custom_imports loads)

    configs = {}
    for flag in ("--index", "--no-index"):
        work = tmp_path / flag.strip("-")
        run_cli("train", "detector", f"{demo.od_file},images={demo.image_root}", "--label-map", str(demo.label_map),
                "--val", f"{demo.od_file},images={demo.image_root}", "--max-iters", "2", "--work-dir", str(work),
                "--dry-run", "-q", flag)
        configs[flag] = Config.fromfile(str(work / "config.py"))
    ind, ref = configs["--index"], configs["--no-index"]
    assert ind.train_dataloader.dataset.type == "IndexedODVGDetectionDataset"
    assert ind.val_dataloader.dataset.type == "IndexedODVGDetectionDataset"
    assert ref.train_dataloader.dataset.type == "ODVGDetectionDataset"
    for part in ("train_dataloader", "val_dataloader"):
        a = DATASETS.build({**ind[part].dataset, "pipeline": []})
        b = DATASETS.build({**ref[part].dataset, "pipeline": []})
        assert _infos(a) == _infos(b) and len(a) == 16
