"""The text-embedding benchmark's input: the sentence corpus, then query sentences and distractors.

An embedding model is good at its job when a sentence and a rewording of it land next to each other, closer than
a sentence that reads almost the same but means something else. For each of the corpus's first sentences holding
a word of WORD_SWAPS (at most QUERIES of them), two more lines follow the corpus:
- its altered copy, the query: that word swapped for a synonym, and the final " ." made "!";
- its distractor: the same word swapped for an unrelated one.
The query is as many words away from its original as from the distractor, so only what the words mean ranks the
original first; a model that matches words alone (seeded random weights) picks between the two by chance. The
share of queries whose nearest neighbour among the other embeddings is their original is the benchmark's quality
figure (the dbt mart embedding_retrieval). Queries are recognised again from the input itself (`query_pairs`),
so a run needs nothing beside its input file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from bench_assets.spec import DatasetSpec

# "A few hundred" queries at most: enough to tell 0.9 from 0.95 (a binomial standard error of 1.7 points at 300).
QUERIES = 300

# word -> (synonym, unrelated word): the first word of a sentence found here is swapped.
WORD_SWAPS = {
    "big": ("large", "purple"), "small": ("little", "wooden"), "quickly": ("rapidly", "loudly"),
    "began": ("started", "forgot"), "begin": ("start", "forget"), "buy": ("purchase", "paint"),
    "bought": ("purchased", "painted"), "house": ("home", "ladder"), "car": ("automobile", "pillow"),
    "city": ("town", "spoon"), "children": ("kids", "engines"), "shop": ("store", "cloud"),
    "road": ("street", "blanket"), "happy": ("glad", "metallic"), "angry": ("furious", "square"),
    "said": ("stated", "swam"), "often": ("frequently", "diagonally"), "near": ("close to", "inside"),
    "help": ("assist", "juggle"), "helped": ("assisted", "juggled"), "difficult": ("hard", "orange"),
    "father": ("dad", "carpet"), "mother": ("mum", "bucket"), "friend": ("companion", "volcano"),
    "quiet": ("silent", "salty"), "river": ("stream", "pencil"), "film": ("movie", "bridge"),
    "government": ("administration", "umbrella"), "people": ("persons", "bricks"), "very": ("really", "never"),
    "many": ("numerous", "wooden"), "country": ("nation", "teapot"), "important": ("significant", "striped"),
    "team": ("squad", "kettle"), "police": ("officers", "pebbles"), "market": ("bazaar", "glacier"),
    "doctor": ("physician", "lighthouse"), "student": ("pupil", "tractor"), "teacher": ("instructor", "walrus"),
    "walked": ("strolled", "boiled"), "cooked": ("prepared", "folded"), "fresh": ("new", "frozen"),
    "large": ("huge", "sleepy"), "old": ("elderly", "liquid"),
}
_WORD = re.compile(r"[A-Za-z]+")


def _swapped(sentence: str, choice: int) -> str | None:
    """The sentence with its first WORD_SWAPS word replaced by entry `choice` (case kept); None if it has none."""
    match = next((m for m in _WORD.finditer(sentence) if m.group(0).lower() in WORD_SWAPS), None)
    if match is None:
        return None
    word = match.group(0)
    swap = WORD_SWAPS[word.lower()][choice]
    swap = swap.capitalize() if word[0].isupper() else swap
    return sentence[: match.start()] + swap + sentence[match.end() :]


def altered_copy(sentence: str) -> str | None:
    """The query: a synonym for the sentence's first WORD_SWAPS word, and "!" for its final " ."."""
    swapped = _swapped(sentence, 0)
    if swapped is None:
        return None
    return swapped[:-2] + "!" if swapped.endswith(" .") else swapped + "!"


def distractor(sentence: str) -> str | None:
    """The same word swapped for an unrelated one: as far from the query in words as the original is."""
    return _swapped(sentence, 1)


def query_pairs(lines: Iterable[str]) -> dict[str, str]:
    """{query: its original} for every line of `lines` that is the altered copy of another line."""
    lines = list(lines)
    present = set(lines)
    return {copy: original for original in lines if (copy := altered_copy(original)) in present}


def write_retrieval_sentences(sentences: list[str], path: Path) -> int:
    """Writes the sentences, then each query and distractor; returns how many queries."""
    from bench_assets.datasets.sentences import write_corpus

    queried = [sentence for sentence in sentences if altered_copy(sentence) is not None][:QUERIES]
    extra = [line for sentence in queried for line in (altered_copy(sentence), distractor(sentence))]
    write_corpus([*sentences, *extra], path)
    return len(queried)


def materialize_retrieval_sentences(context, settings, folder: Path) -> dict:
    """The `retrieval_sentences` asset's work: the profile's sentence corpus (the same sentences as the
    sentence_corpus asset for the seed), its queries and distractors."""
    import dagster as dg

    from bench_assets.datasets.sentences import build_sentence_corpus

    sentences = build_sentence_corpus(settings.selected_profile().sentences, settings.seed)
    path = folder / RETRIEVAL_SENTENCES.file_name
    queries = write_retrieval_sentences(sentences, path)
    context.log.info(f"wrote {len(sentences):,} sentences, {queries:,} queries and their distractors to {path}")
    return {"sentences": len(sentences), "queries": queries, "path": dg.MetadataValue.path(str(path))}


RETRIEVAL_SENTENCES = DatasetSpec(
    name="retrieval_sentences",
    file_name="sentences.txt",
    description="""The sentence corpus, then for its first sentences with a swappable word a query (a synonym,
    "!" for " .") and a distractor (an unrelated word): each query must find its original as nearest neighbour.""",
    build=materialize_retrieval_sentences,
)
