"""``--model swin-t`` (and swin-l) build exactly MMDetection's official MM-Grounding-DINO architecture.

The reference is mmdet's own config file shipped in the wheel; a randomly initialised model built
from it is saved in mmdet's checkpoint format and must load into odvgkit's preset with strict key
(and shape) matching, the way an official checkpoint would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

OFFICIAL = {
    "swin-t": "mm_grounding_dino/grounding_dino_swin-t_pretrain_obj365.py",
    "swin-l": "mm_grounding_dino/grounding_dino_swin-l_pretrain_all.py",
}


def _official_model(rel: str, bert_dir: Path):
    import mmdet
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    import odvgkit_train.mmdet_plugin  # noqa: F401

    register_all_modules(init_default_scope=True)
    cfg_path = Path(mmdet.__file__).parent / ".mim" / "configs" / rel
    assert cfg_path.is_file(), f"mmdet wheel lacks {cfg_path}"
    cfg = Config.fromfile(str(cfg_path))
    cfg.model.language_model.name = str(bert_dir)
    cfg.model.backbone.init_cfg = None  # no download of the ImageNet Swin weights
    cfg.model.encoder.num_cp = 0  # activation checkpointing needs fairscale; it adds no parameters
    return MODELS.build(cfg.model)


@pytest.mark.parametrize("preset", ["swin-t", "swin-l"])
def test_official_checkpoint_loads_strictly(preset: str, bert_dir: Path, tmp_path: Path) -> None:
    import torch

    from odvgkit_train.api import load_model

    torch.manual_seed(0)
    official = _official_model(OFFICIAL[preset], bert_dir)
    state = official.state_dict()
    ckpt = tmp_path / f"official_{preset}.pth"
    torch.save({"meta": {"mmdet_version": "3.3.0"}, "state_dict": state}, ckpt)
    del official
    model = load_model(ckpt, model=preset, text_encoder=bert_dir)
    ours = model.state_dict()
    assert list(ours) == list(state)  # same keys, same order
    assert all(ours[k].shape == state[k].shape for k in state)
    # mmdet leaves some parameters uninitialised (level_embed = torch.Tensor(...)): NaN == NaN here
    differ = [k for k in state if not (torch.allclose(ours[k], state[k], rtol=0, atol=0, equal_nan=True)
                                       if state[k].is_floating_point() else torch.equal(ours[k], state[k]))]
    assert not differ, f"{len(differ)} tensors differ after loading, e.g. {differ[:5]}"
    assert len(state) > 500
    if preset == "swin-t":  # the same file into another architecture: refused, keys listed
        from odvgkit.errors import OdvgError

        with pytest.raises(OdvgError, match=r"official_swin-t\.pth: checkpoint does not match the model \(\d+ unexpected: backbone.*\d+ shape mismatch: "):
            load_model(ckpt, model="tiny", text_encoder=bert_dir)


def test_a_model_without_checkpoint_is_initialised_not_left_as_allocator_garbage(bert_dir: Path) -> None:
    """``load_model(None, model=...)`` fills every parameter (mmdet's ``level_embed`` is a bare
    ``torch.Tensor`` until ``init_weights``): the same seed gives the same finite weights even when
    the allocator hands back memory that held NaN (CI once scored a random model with NaN)."""
    import torch

    from odvgkit_train.inference import load_model

    def build() -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        return {k: v.clone() for k, v in load_model(None, model="tiny", text_encoder=bert_dir).state_dict().items()}

    first = build()
    for _ in range(3):  # freed NaN blocks of the sizes the model's small parameters take
        junk = [torch.full((n,), float("nan")) for n in (64, 256, 1024, 4096, 65536)]
        del junk
    second = build()
    assert "level_embed" in first
    bad = [k for k in first if not (torch.equal(first[k], second[k]) and torch.isfinite(second[k].float()).all())]
    assert not bad, f"parameters not initialised: {bad[:5]}"
