"""Every benchmark the platform runs: one package each, listed here once.

To add a benchmark, write its package (dataset, models, pipeline, row fields, and a BenchmarkSpec named
BENCHMARK in its __init__) and add it to BUILT_IN. The platform makes its assets, check, job and schedule.
"""

from bench_assets.benchmarks import (
    image_classification,
    image_embedding,
    imagenet_rightfit,
    language_modeling,
    object_detection,
    sentiment,
    table_rows,
    text_embedding,
)
from bench_assets.benchmarks.user_models import models_file, with_user_models

BUILT_IN = (
    image_classification.BENCHMARK,
    language_modeling.BENCHMARK,
    sentiment.BENCHMARK,
    object_detection.BENCHMARK,
    imagenet_rightfit.BENCHMARK,
    table_rows.BENCHMARK,
    text_embedding.BENCHMARK,
    image_embedding.BENCHMARK,
)
# With a person's own models from the models file (bench_assets/benchmarks/user_models.py), each in its benchmark.
BENCHMARKS = with_user_models(BUILT_IN, models_file())
BENCHMARKS_BY_NAME = {benchmark.name: benchmark for benchmark in BENCHMARKS}
# Every model of every benchmark by its partition key, which is unique across benchmarks (weights files use it).
MODELS = {model.name: model for benchmark in BENCHMARKS for model in benchmark.models.values()}
if len(MODELS) != sum(len(benchmark.models) for benchmark in BENCHMARKS):
    raise ValueError("two benchmarks name a model alike: partition keys must be unique across benchmarks")
