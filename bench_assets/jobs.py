"""Jobs that `make bench`, the schedule and the UI launch: one per benchmark, partitioned by model."""

import dagster as dg

from bench_assets.partitions import image_model_partitions, language_model_partitions

datasets_job = dg.define_asset_job("datasets_job", selection=dg.AssetSelection.groups("datasets"))

image_classification_job = dg.define_asset_job(
    "image_classification_job",
    selection=dg.AssetSelection.assets("image_model_weights", "image_classification_run"),
    partitions_def=image_model_partitions,
)

language_modeling_job = dg.define_asset_job(
    "language_modeling_job",
    selection=dg.AssetSelection.assets("language_model_weights", "language_modeling_run"),
    partitions_def=language_model_partitions,
)

BENCHMARK_JOBS = (image_classification_job, language_modeling_job)

# The marts, the change-point analysis and the report, over every run so far.
metrics_job = dg.define_asset_job("metrics_job", selection=dg.AssetSelection.groups("metrics"))
