"""Jobs that `make bench`, the schedule and the UI launch."""

import dagster as dg

from bench_assets.partitions import image_model_partitions

datasets_job = dg.define_asset_job("datasets_job", selection=dg.AssetSelection.groups("datasets"))

image_classification_job = dg.define_asset_job(
    "image_classification_job",
    selection=dg.AssetSelection.assets("image_model_weights", "image_classification_run"),
    partitions_def=image_model_partitions,
)
