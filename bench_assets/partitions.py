"""One partition per model: a run of a benchmark is a materialization of its model's partition."""

import dagster as dg

from bench_assets.models import IMAGE_MODELS, LANGUAGE_MODELS

image_model_partitions = dg.StaticPartitionsDefinition(list(IMAGE_MODELS))
language_model_partitions = dg.StaticPartitionsDefinition(list(LANGUAGE_MODELS))
