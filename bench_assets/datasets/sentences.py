"""The sentence corpus for the BERT masked-language-model benchmark.

Beam's language-modeling benchmark has BERT predict the last word of each of 50,000 "manually generated
sentences" written as "The capital of France is Paris ." (the final "." is a separate token, so masking the
second-to-last whitespace token masks the last real word). Nothing can be downloaded here, so the corpus is
built offline, deterministically for a seed, from three kinds of sentence in fixed proportions:

- real sentences from the English text in gensim's wheel test data (a Wikipedia extract, CC BY-SA, and the
  Lee corpus of ABC news articles), read from the installed package at run time and never copied into
  this repository;
- sentences derived from those: long ones split at clause boundaries, and neighbours joined by a semicolon;
- sentences from a seeded grammar of this module's own, with several structures and nested clauses.

Every sentence ends with "<word> ." where <word> is alphabetic and, lowercased, a whole token of the BERT
uncased vocabulary, so the masked word is always a single vocabulary entry.
"""

from __future__ import annotations

import bz2
import importlib.util
import math
import random
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from transformers import BertTokenizer

from bench_assets.datasets.bert_vocabulary import bert_vocabulary, load_bert_tokenizer
from bench_assets.spec import DatasetSpec

TEXT_PACKAGE = "gensim"

# Shares of a corpus of any size, fixed so that a quick run has the same mix (and so roughly the same
# length distribution) as the full 50,000. The grammar fills whatever a real pool cannot.
REAL_SHARE = 0.3
DERIVED_SHARE = 0.1

MIN_WORDS = 4  # words before the final "."
MAX_WORDS = 80  # keeps every sentence far below BERT's 512 positions


# --- real sentences -------------------------------------------------------------------------------------

# {{convert|55|in|mm}} and {{convert|200|to|350|mm}}: filter_wiki drops templates, which would leave
# "receives an average of of rainfall", so measurements are written out first.
_CONVERT = re.compile(
    r"\{\{(?:convert|cvt)\|([-\d.,]+)\|(?:(to|and|-)\|([-\d.,]+)\|)?([^|{}]+)[^{}]*\}\}", re.I
)
_UNITS = {
    "km": "kilometres",
    "mi": "miles",
    "m": "metres",
    "mm": "millimetres",
    "cm": "centimetres",
    "nmi": "nautical miles",
    "ft": "feet",
    "in": "inches",
    "lb": "pounds",
    "kg": "kilograms",
    "km2": "square kilometres",
    "sqmi": "square miles",
    "acre": "acres",
    "C": "degrees Celsius",
    "\u00b0C": "degrees Celsius",
    "F": "degrees Fahrenheit",
    "\u00b0F": "degrees Fahrenheit",
}


def _write_out_measurement(match: re.Match[str]) -> str:
    low, joiner, high, unit = match.groups()
    if unit.strip() not in _UNITS:
        return match.group(0)
    amount = f"{low} {'to' if joiner == '-' else joiner} {high}" if joiner else low
    return f"{amount} {_UNITS[unit.strip()]}"


_WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
# (file name, encoding): lee.cor is not UTF-8 (it holds a raw 0xA3 pound sign).
_PLAIN_FILES = (("lee_background.cor", "utf-8"), ("lee.cor", "cp1252"))


_TYPOGRAPHY = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-", "\u00a0": " "}
)
# A "." after one of these ends an abbreviation, not a sentence.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr prof gen col lt sgt capt gov sen rep rev vs etc inc ltd co corp mt ft no vol fig "
    "approx ca jan feb mar apr jun jul aug sep sept oct nov dec al ed eds pp op cf viz ch brig maj adm "
    "cmdr cpl pvt pres hon messrs rt dept univ bros govt est esp assoc".split()
)
_SENTENCE_BREAK = re.compile(r'(?<=[.!?])\s+(?=["(]?[A-Z0-9])')
# Leftover wiki markup, URLs, tokenisation debris (" ," from removed foreign script), non-ASCII.
_DEBRIS = re.compile(r"[\[\]{}|=<>*#_\\~^@]|http|www\.|\s[,.;:)]|\(\s|\(\)|,,|\.\.|[^\x20-\x7e]")
# Words left side by side where filter_wiki removed a template between them ("a of milk", "the of aikido").
_GAP = re.compile(r"\b(?:of of|(?:a|an|the) (?:of|to|and|or|is|was|by))\b")
_ENDING = re.compile(r"^(.*\S)\s+([A-Za-z]{2,})\.$")
# Words after which a clause can stand alone as a sentence.
_CLAUSE_STARTERS = frozenset(
    "the a an he she it they we i this these those his her its their there many some most".split()
)
# Sentence openers that are plain words (not names), so they can be lowercased after a semicolon.
_JOIN_STARTERS = _CLAUSE_STARTERS | frozenset(
    "in on at by for from after before during however as since when while although because following "
    "due today such both each one other all several that according despite instead also "
    "then thus later meanwhile".split()
)
MAX_JOINED_WORDS = 50  # joins add long sentences; past this they would outweigh the real long tail


def _gensim_test_data() -> Path:
    spec = importlib.util.find_spec(TEXT_PACKAGE)
    directory = Path(spec.submodule_search_locations[0]) / "test" / "test_data" if spec else None
    if directory is None or not (directory / _WIKI_FILE).is_file():
        raise FileNotFoundError(
            f"the real English text comes from the test data in the Python package {TEXT_PACKAGE!r}: "
            f"pip install {TEXT_PACKAGE}==4.4.0"
        )
    return directory


def _paragraphs() -> Iterator[str]:
    """Lines of running text, in a fixed order."""
    from gensim.corpora.wikicorpus import filter_wiki  # imported late: it pulls in scipy

    data = _gensim_test_data()
    with bz2.open(data / _WIKI_FILE) as stream:
        for _, element in ET.iterparse(stream):
            if element.tag.endswith("}text") and element.text and not element.text.startswith("#REDIRECT"):
                # Headings, lists, tables and captions are not running text.
                lines = filter_wiki(_CONVERT.sub(_write_out_measurement, element.text)).split("\n")
                yield from (line for line in lines if line and line[0] not in "=*#|{!;:")
            element.clear()
    for name, encoding in _PLAIN_FILES:
        yield from (data / name).read_text(encoding=encoding).split("\n")


def _clean(line: str) -> str:
    line = unicodedata.normalize("NFKD", line.translate(_TYPOGRAPHY))
    line = "".join(c for c in line if not unicodedata.combining(c))
    line = re.sub(r"'{2,}", "", line)  # wiki italics and bold
    line = re.sub(r"\[\d+\]", "", line)  # footnote marks
    line = re.sub(r"\s*--\s*", " - ", line)  # the Lee corpus writes dashes as "--"
    return re.sub(r"\s+", " ", line).strip()


def _split_sentences(line: str) -> Iterator[str]:
    if not line:
        return
    pieces = _SENTENCE_BREAK.split(line)
    pending = ""
    for piece, following in zip(pieces, pieces[1:] + [""], strict=True):
        pending = f"{pending} {piece}" if pending else piece
        last = pending.rsplit(None, 1)[-1].rstrip(".").lower()
        # An abbreviation or an initial ("Stephen A. Douglas") does not end a sentence; an initialism
        # does when a plain sentence opener follows ("the rest of the U.S. The state's roads").
        if last in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last):
            continue
        next_word = following.split(" ", 1)[0].lower()
        if re.fullmatch(r"[a-z](\.[a-z])+", last) and next_word not in _JOIN_STARTERS:
            continue
        yield pending
        pending = ""


def _finish(sentence: str) -> str | None:
    """The sentence in the benchmark's "<...> <word> ." form, or None when it does not qualify."""
    if sentence.count('"') % 2 and sentence.startswith('"'):
        sentence = sentence[1:]  # a quotation that goes on into the next sentence
    if _DEBRIS.search(sentence) or _GAP.search(sentence):
        return None
    if sentence.count('"') % 2 or sentence.count("(") != sentence.count(")"):
        return None
    match = _ENDING.match(sentence)
    if not match or not (sentence[0].isupper() or sentence[0].isdigit() or sentence[0] == '"'):
        return None
    body, word = match.groups()
    if word.lower() not in bert_vocabulary() or word.lower() in _ABBREVIATIONS:
        return None
    if not MIN_WORDS <= len(body.split()) + 1 <= MAX_WORDS:
        return None
    return f"{body} {word} ."


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _clauses(body: str) -> Iterator[str]:
    """Independent clauses of one sentence body: at semicolons, and at ", but/while/although" + subject."""
    for part in body.split("; "):
        pieces = re.split(r", (?:but|while|whereas|although) (?=(\w+))", part)
        # re.split interleaves the captured next word: [clause, word, clause, word, clause, ...]
        clauses = pieces[::2]
        if len(clauses) > 1 and all(word.lower() in _CLAUSE_STARTERS for word in pieces[1::2]):
            yield from clauses
        else:
            yield part


def _joined(previous: str, body: str) -> str | None:
    first, _, rest = body.partition(" ")
    if first.lower() not in _JOIN_STARTERS or len(previous.split()) + len(body.split()) > MAX_JOINED_WORDS:
        return None
    return _finish(f"{previous}; {first if first == 'I' else first.lower()} {rest}.")


@lru_cache(maxsize=1)
def _real_pools() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(real sentences, sentences derived from them), each unique and in a fixed order."""
    real: dict[str, None] = {}
    derived: dict[str, None] = {}
    for line in _paragraphs():
        previous: str | None = None
        for raw in _split_sentences(_clean(line)):
            sentence = _finish(raw)
            if sentence is None:
                previous = None
                continue
            real.setdefault(sentence)
            body = sentence[:-2]
            clauses = list(_clauses(body))
            if len(clauses) > 1:
                for clause in clauses:
                    if (short := _finish(_capitalised(clause) + ".")) is not None:
                        derived.setdefault(short)
            # Neighbours in a paragraph read on from each other, so a semicolon can join them.
            if previous is not None and (joined := _joined(previous, body)):
                derived.setdefault(joined)
            previous = body
    return tuple(real), tuple(s for s in derived if s not in real)


# --- generated sentences --------------------------------------------------------------------------------

# Verbs as "base:past", grouped by the kind of object they take, so that objects make sense.
_VERBS_BY_OBJECT = {
    "thing": "find:found carry:carried borrow:borrowed buy:bought sell:sold clean:cleaned repair:repaired "
    "bring:brought hide:hid open:opened wrap:wrapped check:checked keep:kept return:returned "
    "describe:described examine:examined pack:packed",
    "food": "cook:cooked buy:bought eat:ate share:shared order:ordered bake:baked prepare:prepared "
    "taste:tasted serve:served",
    "animal": "feed:fed watch:watched follow:followed photograph:photographed find:found chase:chased "
    "rescue:rescued train:trained",
    "building": "visit:visited leave:left reach:reached clean:cleaned paint:painted describe:described "
    "photograph:photographed open:opened close:closed",
    "landscape": "visit:visited reach:reached cross:crossed explore:explored photograph:photographed "
    "describe:described leave:left",
    "idea": "explain:explained discuss:discussed reject:rejected approve:approved support:supported "
    "question:questioned announce:announced change:changed defend:defended remember:remembered "
    "write:wrote read:read",
    "person": "meet:met call:called help:helped thank:thanked visit:visited invite:invited "
    "warn:warned ask:asked follow:followed",
}
_INTRANSITIVE = (
    "arrive:arrived wait:waited laugh:laughed sleep:slept smile:smiled return:returned agree:agreed "
    "complain:complained listen:listened stay:stayed work:worked rest:rested sing:sang dance:danced "
    "leave:left hesitate:hesitated recover:recovered retire:retired apologize:apologized win:won "
    "travel:traveled"
)
_NOUNS = {
    "thing": "book letter map key camera bicycle lamp basket umbrella ticket wallet watch radio "
    "notebook photograph coat bottle box envelope painting guitar clock blanket rope ladder",
    "food": "bread soup cheese coffee tea rice fish cake pie salad sandwich apples oranges potatoes "
    "chicken eggs honey dinner breakfast lunch",
    "animal": "dog cat horse cow bird fox rabbit goat sheep duck owl deer wolf bear pig mouse",
    "building": "library station museum school hospital church factory kitchen office castle theater "
    "stadium airport hotel restaurant shop bakery bank cottage barn",
    "landscape": "village city market garden forest valley park field river harbor mountain lake border "
    "island beach farm road bridge coast",
    "idea": "plan idea report story decision problem question answer proposal budget schedule rule "
    "theory poem speech agreement argument result",
}
# Foods that take "a"; the rest are mass nouns, plurals or meals.
_COUNTABLE_FOODS = frozenset(("cake", "pie", "salad", "sandwich"))
# Where something can be: the prepositions that fit each place.
_PLACE_PREPOSITIONS = {
    **dict.fromkeys(_NOUNS["building"].split(), ("in", "near", "outside", "behind")),
    **dict.fromkeys("village city market garden forest valley park field".split(), ("in", "near")),
    **dict.fromkeys("river harbor mountain lake border".split(), ("near", "beside")),
    **dict.fromkeys("island beach farm road bridge coast".split(), ("on", "near")),
}
_PEOPLE = (
    "teacher farmer doctor nurse engineer student pilot baker writer painter driver lawyer scientist "
    "musician soldier sailor captain manager mayor neighbor officer journalist professor director "
    "architect fisherman gardener librarian merchant priest judge coach singer poet"
).split()
_NAMES = (
    "Anna Peter Maria James Sarah David Laura Thomas Emma Daniel Grace Michael Alice John Helen Robert "
    "Julia Henry Clara George Susan Paul Lucy Mark Rachel Simon Kate Martin Ruth Frank"
).split()
_HOMETOWNS = "village city farm island coast valley north south capital".split()
_ADJECTIVES = {
    "person": "old young tired careful angry happy nervous local foreign famous quiet busy patient clever "
    "friendly cheerful proud brave",
    "thing": "old small large heavy new broken strange beautiful expensive cheap red blue green",
    "food": "fresh warm cold hot sweet delicious",
    "animal": "old small large young hungry wild brown black white",
    "building": "old small large quiet busy famous ancient beautiful empty new",
    "landscape": "quiet beautiful distant famous small large",
    "idea": "new simple strange difficult important",
}
_PREDICATES = (
    "tired happy nervous busy late early angry quiet ready proud afraid sick lucky famous surprised "
    "confused hungry worried right wrong"
).split()
# Times that fit any tense, then ones that need the past or the future.
_TIMES = (
    "in the morning|in the evening|on Sunday|on Monday|after dinner|before breakfast|during the storm|"
    "every summer|at noon|at midnight|in the spring|after the meeting"
).split("|")
_PAST_TIMES = _TIMES + "yesterday|last week|last year|a year ago|two days later|the next morning".split("|")
_FUTURE_TIMES = _TIMES + "tomorrow|tonight|next week|next year|soon".split("|")
_MANNERS = "quickly carefully slowly quietly again together immediately eventually suddenly".split()
_SPEECH_VERBS = "said thought believed explained noticed claimed admitted remembered insisted".split()
_SUBORDINATORS = "when after before because although while since once".split()
_COORDINATORS = ("and", "but", "so", "and then")
_INTENTIONS = "decided wanted promised tried refused hoped planned forgot agreed".split()
_MODALS = "will could should would might must".split()


def _pairs(spec: str) -> list[tuple[str, str]]:
    return [(base, past) for base, past in (item.split(":") for item in spec.split())]


def _with_determiner(determiner: str, phrase: str) -> str:
    # No word in this grammar starts with a silent "h" or a "you"-sounding vowel, so spelling decides.
    if determiner == "a" and phrase[0] in "aeiou":
        determiner = "an"
    return f"{determiner} {phrase}"


class _Grammar:
    """A small English grammar whose recursion (clauses inside clauses) gives a natural length spread."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.transitive = [(obj, verb) for obj, verbs in _VERBS_BY_OBJECT.items() for verb in _pairs(verbs)]
        self.intransitive = _pairs(_INTRANSITIVE)
        self.nouns = {kind: words.split() for kind, words in _NOUNS.items()}
        self.adjectives = {kind: words.split() for kind, words in _ADJECTIVES.items()}
        self.places = self.nouns["building"] + self.nouns["landscape"]

    def pick(self, options: Sequence[str]) -> str:
        return options[self.rng.randrange(len(options))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def person(self) -> str:
        if self.chance(0.35):
            return self.pick(_NAMES)
        adjective = f"{self.pick(self.adjectives['person'])} " if self.chance(0.3) else ""
        determiner = self.pick(("the", "the", "a", "our", "their", "my"))
        phrase = _with_determiner(determiner, adjective + self.pick(_PEOPLE))
        if self.chance(0.15):
            phrase += f" from the {self.pick(_HOMETOWNS)}"
        elif self.chance(0.12):
            phrase += f" who {self.predicate(plural=False, depth=2)}"
        return phrase

    def noun_phrase(self, kind: str, indefinite: bool = False) -> str:
        if kind == "person":
            return self.person()
        noun = self.pick(self.nouns[kind])
        adjective = f"{self.pick(self.adjectives[kind])} " if self.chance(0.35) else ""
        if indefinite:
            determiners: tuple[str, ...] = ("a",)
        elif kind == "landscape":
            determiners = ("the",)  # "her valley" reads wrong
        elif kind == "food" and noun not in _COUNTABLE_FOODS:
            determiners = ("the", "the", "some", "his", "her", "their", "our")
        else:
            determiners = ("the", "the", "a", "a", "his", "her", "their", "our")
        return _with_determiner(self.pick(determiners), adjective + noun)

    def place(self) -> str:
        noun = self.pick(self.places)
        return f"{self.pick(_PLACE_PREPOSITIONS[noun])} the {noun}"

    def subject(self) -> tuple[str, bool]:
        """(subject, whether it is plural)."""
        if self.chance(0.12):
            pronoun = self.pick(("he", "she", "they", "we", "I"))
            return pronoun, pronoun in ("they", "we")
        return self.person(), False

    def predicate(self, plural: bool, depth: int) -> str:
        """A verb phrase: past tense, a modal, or "decided to"-like, with optional adverbials and clause."""
        roll = self.rng.random()
        if roll < 0.12:
            return f"{'were' if plural else 'was'} {self.pick(_PREDICATES)}"
        if roll < 0.35:
            base, past = self.intransitive[self.rng.randrange(len(self.intransitive))]
            obj = ""
        else:
            kind, (base, past) = self.transitive[self.rng.randrange(len(self.transitive))]
            obj = " " + self.noun_phrase(kind)
        form = self.rng.random()
        if form < 0.6:
            phrase, times = past + obj, _PAST_TIMES
        elif form < 0.8:
            phrase, times = f"{self.pick(_MODALS)} {base}{obj}", _FUTURE_TIMES
        else:
            phrase, times = f"{self.pick(_INTENTIONS)} to {base}{obj}", _PAST_TIMES
        if self.chance(0.3):
            phrase += " " + self.place()
        if self.chance(0.25):
            phrase += " " + self.pick(times if self.chance(0.6) else _MANNERS)
        if depth < 2 and self.chance(0.15):
            phrase += f" {self.pick(_SUBORDINATORS)} {self.clause(depth + 1)}"
        return phrase

    def clause(self, depth: int) -> str:
        subject, plural = self.subject()
        return f"{subject} {self.predicate(plural, depth)}"

    def sentence(self) -> str:
        roll = self.rng.random()
        if roll < 0.2:
            text = self.clause(0)
        elif roll < 0.35:
            text = f"{self.pick(_TIMES)}, {self.clause(1)}"
        elif roll < 0.5:
            text = f"{self.clause(1)}, {self.pick(_COORDINATORS)} {self.clause(1)}"
        elif roll < 0.65:
            text = f"{self.pick(_SUBORDINATORS)} {self.clause(1)}, {self.clause(1)}"
        elif roll < 0.8:
            text = f"{self.subject()[0]} {self.pick(_SPEECH_VERBS)} that {self.clause(1)}"
        elif roll < 0.87:
            kind = self.pick(("thing", "animal"))  # singular nouns only, to agree with "was"
            text = f"there was {self.noun_phrase(kind, indefinite=True)} {self.place()}"
        else:
            # The long tail: one sentence of several clauses.
            parts = [self.clause(1) for _ in range(self.rng.randint(2, 4))]
            text = f"{self.pick(_SUBORDINATORS)} {parts[0]}, " + ", and ".join(parts[1:])
        return _capitalised(text) + " ."


def _generated(rng: random.Random) -> Iterator[str]:
    grammar = _Grammar(rng)
    vocab = bert_vocabulary()
    while True:
        sentence = grammar.sentence()
        words = sentence.split()
        if words[-2].isalpha() and words[-2].lower() in vocab and MIN_WORDS <= len(words) - 1 <= MAX_WORDS:
            yield sentence


def build_sentence_corpus(count: int, seed: int) -> list[str]:
    """`count` unique sentences, the same list for the same seed, in Beam's "<...> <word> ." form."""
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    rng = random.Random(seed)
    real, derived = _real_pools()
    # dict keeps insertion order (a set's order would change with PYTHONHASHSEED).
    chosen = dict.fromkeys(rng.sample(real, min(len(real), round(count * REAL_SHARE))))
    chosen.update(dict.fromkeys(rng.sample(derived, min(len(derived), round(count * DERIVED_SHARE)))))
    generated = _generated(rng)
    attempts = 0
    while len(chosen) < count:
        attempts += 1
        if attempts > 20 * count:
            raise RuntimeError(f"the grammar ran out of new sentences after {len(chosen)} of {count}")
        chosen.setdefault(next(generated))
    sentences = list(chosen)
    rng.shuffle(sentences)
    return sentences


# --- statistics and files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusStats:
    count: int
    unique_count: int
    token_length_mean: float  # tokens per sentence, [CLS] and [SEP] included
    token_length_p50: int  # nearest-rank percentiles
    token_length_p99: int
    token_length_max: int
    unk_share: float  # [UNK] tokens / all tokens


def _nearest_rank(ordered: Sequence[int], q: float) -> int:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def corpus_stats(sentences: Sequence[str], tokenizer: BertTokenizer) -> CorpusStats:
    if not sentences:
        raise ValueError("no sentences")
    # One batch call: the same ids as tokenizer.encode() on each sentence, much faster.
    ids = tokenizer(list(sentences), add_special_tokens=True)["input_ids"]
    lengths = sorted(len(row) for row in ids)
    unknown = sum(row.count(tokenizer.unk_token_id) for row in ids)
    return CorpusStats(
        count=len(sentences),
        unique_count=len(set(sentences)),
        token_length_mean=sum(lengths) / len(lengths),
        token_length_p50=_nearest_rank(lengths, 0.5),
        token_length_p99=_nearest_rank(lengths, 0.99),
        token_length_max=lengths[-1],
        unk_share=unknown / sum(lengths),
    )


def write_corpus(sentences: Iterable[str], path: Path) -> None:
    """One sentence per line, UTF-8: the input file format of Beam's example (ReadFromText)."""
    lines = list(sentences)
    if any("\n" in s or "\r" in s or not s.strip() for s in lines):
        raise ValueError("sentences must be non-empty and hold no line breaks")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{s}\n" for s in lines), encoding="utf-8")



def materialize_sentence_corpus(context, settings, folder: Path) -> dict:
    """The `sentence_corpus` asset's work: the corpus of the settings' profile, and its metadata."""
    import dagster as dg

    count = settings.selected_profile().sentences
    sentences = build_sentence_corpus(count, settings.seed)
    path = folder / SENTENCE_CORPUS.file_name
    write_corpus(sentences, path)
    stats = corpus_stats(sentences, load_bert_tokenizer())
    context.log.info(f"wrote {stats.count:,} sentences to {path}; [UNK] share {stats.unk_share:.4%}")
    return {**asdict(stats), "path": dg.MetadataValue.path(str(path))}


SENTENCE_CORPUS = DatasetSpec(
    name="sentence_corpus",
    file_name="sentences.txt",
    description="""Unique English sentences, one per line, each ending in "<word> ." so its last word can be masked.

    Like the seed benchmark's generated sentences: real sentences from text that installed packages ship,
    split and recombined, plus a seeded grammar of our own; deterministic for a given seed.""",
    build=materialize_sentence_corpus,
)


def mask_last_word(sentence: str) -> tuple[str, str]:
    """(masked text, masked word) the way Beam's example masks: the second-to-last whitespace token."""
    tokens = sentence.split()
    if len(tokens) < 2:
        raise ValueError(f"need at least a word and a final token to mask: {sentence!r}")
    return " ".join(tokens[:-2] + ["[MASK]", tokens[-1]]), tokens[-2].lower()
