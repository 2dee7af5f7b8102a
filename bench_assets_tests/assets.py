"""The Dagster assets the tests materialize, by the names the platform gives them from the benchmark specs."""

from bench_assets.datasets.images import OPENIMAGE_SAMPLE
from bench_assets.datasets.sentences import SENTENCE_CORPUS
from bench_assets.defs.benchmarks import BENCHMARK_DEFINITIONS
from bench_assets.defs.datasets import DATASET_ASSETS

IMAGE_LIST = OPENIMAGE_SAMPLE.file_name
CORPUS_FILE = SENTENCE_CORPUS.file_name

openimage_sample = DATASET_ASSETS[OPENIMAGE_SAMPLE.name]
sentence_corpus = DATASET_ASSETS[SENTENCE_CORPUS.name]
image_model_weights = BENCHMARK_DEFINITIONS["image_classification"].weights
image_classification_run = BENCHMARK_DEFINITIONS["image_classification"].run
language_model_weights = BENCHMARK_DEFINITIONS["language_modeling"].weights
language_modeling_run = BENCHMARK_DEFINITIONS["language_modeling"].run
