"""Mixture manifests from ``odvgkit mix`` drive the trainer: exact records per epoch per source."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from .conftest import run_cli


def test_manifest_samples_per_epoch_are_honoured(demo, bert_dir, tmp_path: Path) -> None:
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    import odvgkit_train.mmdet_plugin  # noqa: F401

    manifest = tmp_path / "mix.yaml"
    run_cli("mix", f"{demo.od_file}:samples=5,lm={demo.label_map},root={demo.image_root},name=od",
            f"{demo.vg_file}:repeat=1.5,root={demo.image_root},name=vg", "-o", str(manifest), "-q")
    work = tmp_path / "w"
    proc = run_cli("train", "pretrain", str(manifest), "--model", "tiny", "--text-encoder", str(bert_dir),
                   "--work-dir", str(work), "--batch-size", "2", "--epochs", "1", "--dry-run", "--json")
    summary = json.loads(proc.stdout.strip())
    # 5 + round(1.5 × 16) = 29 records per epoch → ceil(29 / 2) = 15 iterations
    assert summary["iterations"] == 15 and summary["sources"] == 2
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(str(work / "config.py"))
    built = [DATASETS.build(d) for d in cfg.train_dataloader.dataset.datasets]
    assert [type(d).__name__ for d in built] == ["MixtureSampledDataset", "MixtureSampledDataset"]
    assert [len(d) for d in built] == [5, 24]
    od_counts = Counter(built[0].indices)
    assert set(od_counts.values()) == {1} and len(od_counts) == 5  # 5 distinct records once each
    vg_counts = Counter(built[1].indices)
    assert sorted(Counter(vg_counts[i] for i in range(16)).items()) == [(1, 8), (2, 8)]  # floor/ceil of 1.5
    assert built[1][0]["data_samples"].text  # samples flow through the real pipeline


def test_emitted_mmdet_snippet_builds_the_trainers_mixture(demo, bert_dir, tmp_path: Path) -> None:
    """``mix --emit-mmdet`` in a plain mmengine config: the plugin imported by ``custom_imports``,
    indexed sources, and the same records drawn per epoch as the trainer's own config."""
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    specs = (f"{demo.od_file}:samples=5,lm={demo.label_map},root={demo.image_root},name=od,cbt=0.3",
             f"{demo.vg_file}:repeat=1.5,root={demo.image_root},name=vg")
    snippet = tmp_path / "mix_datasets.py"
    run_cli("mix", *specs, "-o", str(tmp_path / "mix.yaml"), "--emit-mmdet", str(snippet), "-q")
    text = snippet.read_text()
    index_cmd = next(line for line in text.splitlines() if line.startswith("#   odvgkit index "))
    assert run_cli(*index_cmd.removeprefix("#   odvgkit ").split(), "--force", "-q").returncode == 0
    user_cfg = tmp_path / "user_config.py"
    user_cfg.write_text("train_pipeline = []\n" + text)
    cfg = Config.fromfile(str(user_cfg))  # runs custom_imports: odvgkit_train.mmdet_plugin
    register_all_modules(init_default_scope=True)
    mine = [DATASETS.build(d) for d in cfg.train_dataloader.dataset.datasets]
    run_cli("train", "pretrain", str(tmp_path / "mix.yaml"), "--model", "tiny", "--text-encoder", str(bert_dir),
            "--work-dir", str(tmp_path / "w"), "--epochs", "1", "--dry-run", "-q")
    trainer = [DATASETS.build(d) for d in Config.fromfile(str(tmp_path / "w" / "config.py")).train_dataloader.dataset.datasets]
    assert [type(d.dataset).__name__ for d in mine] == ["IndexedODVGDataset", "IndexedODVGDataset"]
    assert [len(d) for d in mine] == [5, 24]
    assert [list(d.indices) for d in mine] == [list(d.indices) for d in trainer]
    assert mine[0].get_data_info(0) == trainer[0].get_data_info(0)
    plain = tmp_path / "plain.py"
    run_cli("mix", *specs, "-o", str(tmp_path / "mix2.yaml"), "--emit-mmdet", str(plain), "--plain-mmdet", "-q")
    assert "custom_imports" not in plain.read_text() and "type='ODVGDataset'" in plain.read_text()


def test_gzip_and_parquet_sources_are_copied_to_plain_jsonl(demo, bert_dir, tmp_path: Path) -> None:
    from mmdet.datasets import ODVGDataset

    from odvgkit.io import read_records, write_records

    records = [rec for _, rec in read_records(demo.vg_file)]
    gz, pq = tmp_path / "vg.jsonl.gz", tmp_path / "od.parquet"
    write_records(gz, records)
    write_records(pq, [rec for _, rec in read_records(demo.od_file)])
    work = tmp_path / "w"
    run_cli("train", "pretrain", f"{gz},name=vg", f"{pq},name=od,label_map={demo.label_map}", "--image-root",
            str(demo.image_root), "--model", "tiny", "--text-encoder", str(bert_dir), "--work-dir", str(work),
            "--max-iters", "1", "--dry-run", "-q")
    assert (work / "data" / "vg.jsonl").is_file() and (work / "data" / "od.jsonl").is_file()
    ds = ODVGDataset(data_root="", ann_file=str(work / "data" / "vg.jsonl"), data_prefix=dict(img=""),
                     filter_cfg=dict(filter_empty_gt=False), return_classes=True, pipeline=[])
    assert [ds.get_data_info(i)["text"] for i in range(len(ds))] == [r["grounding"]["caption"] for r in records]
    od = [rec for _, rec in read_records(work / "data" / "od.jsonl")]
    assert od == [rec for _, rec in read_records(demo.od_file)]
