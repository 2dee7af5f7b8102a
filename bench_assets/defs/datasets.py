"""The benchmark inputs: one asset per dataset the benchmarks read (two benchmarks may share one)."""

import dagster as dg

from bench_assets.benchmarks import BENCHMARKS
from bench_assets.settings import BenchmarkSettings
from bench_assets.spec import DatasetSpec


def dataset_asset(dataset: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(name=dataset.name, description=dataset.description, group_name="datasets", kinds={"python"})
    def build(context: dg.AssetExecutionContext, settings: BenchmarkSettings) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata=dataset.build(context, settings, settings.dataset_dir(dataset.name)))

    return build


DATASET_ASSETS = {
    dataset.name: dataset_asset(dataset) for dataset in {benchmark.dataset.name: benchmark.dataset for benchmark in BENCHMARKS}.values()
}
datasets_job = dg.define_asset_job("datasets_job", selection=dg.AssetSelection.groups("datasets"))


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=list(DATASET_ASSETS.values()), jobs=[datasets_job])
