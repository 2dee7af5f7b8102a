"""Where a run's time goes: each stage's busy time, recorded by the pipeline on every runner, and the bound."""

import time

import apache_beam as beam
import pytest

from bench_assets.pipeline.failures import PREPROCESS, READ
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.runner import RunnerSettings
from bench_assets.pipeline.stage_timing import STAGES, STAGES_OUTPUT, timed
from bench_assets_tests.assets import image_classification_run, image_model_weights, openimage_sample
from bench_assets_tests.conftest import materialize

SLEEP_S = 0.02
ELEMENTS = 10


class PassOn(beam.DoFn):
    def process(self, element):
        yield element


class Sleep(beam.DoFn):
    def process(self, element):
        time.sleep(SLEEP_S)
        yield element


@pytest.fixture(scope="module")
def dask_address():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster.scheduler_address


# A Dask cluster takes processes and seconds to start: its case belongs to the slow tier.
@pytest.mark.parametrize("runner", ["direct", pytest.param("dask", marks=pytest.mark.slow)])
def test_a_stage_counts_its_own_work_not_the_steps_its_elements_go_on_to(runner, tmp_path, request):
    # Runners hand an element to the next step while the step that yielded it waits: reading must not be charged
    # with the sleeping step downstream.
    settings = RunnerSettings(runner="dask", dask_address=request.getfixturevalue("dask_address")) if runner == "dask" else RunnerSettings()
    with settings.pipeline() as pipeline:
        (
            pipeline
            | beam.Create(list(range(ELEMENTS)))
            | "Read" >> timed(READ, PassOn(), tmp_path)
            | "Preprocess" >> timed(PREPROCESS, Sleep(), tmp_path)
        )
        pipeline.run().wait_until_finish()

    records = read_output_rows(tmp_path, STAGES_OUTPUT)
    busy = {stage: sum(r["busy_us"] for r in records if r["stage"] == stage) / 1e6 for stage in (READ, PREPROCESS)}
    items = {stage: sum(r["items"] for r in records if r["stage"] == stage) for stage in (READ, PREPROCESS)}
    assert items == {READ: ELEMENTS, PREPROCESS: ELEMENTS}
    assert {r["step"] for r in records} == {"PassOn", "Sleep"}
    assert busy[PREPROCESS] >= ELEMENTS * SLEEP_S
    assert busy[READ] < ELEMENTS * SLEEP_S / 2


@pytest.mark.parametrize("runner_config", [{}, pytest.param({"runner": "dask", "workers": 2}, marks=pytest.mark.slow)])
def test_a_run_records_every_stage_and_names_its_bound(runner_config, bench_resources, query):
    materialize([openimage_sample], bench_resources)
    result = materialize(
        [image_model_weights, image_classification_run], bench_resources, partition_key="efficientnet_lite0",
        run_config={"ops": {"image_classification_run": {"config": {"min_batch_size": 4, "max_batch_size": 8, **runner_config}}}},
    )
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "nothing_lost" and check.passed
    assert {stage for (stage,) in query("SELECT DISTINCT stage FROM stages")} == set(STAGES) - {"inference"}

    columns = [f"{stage}_busy_seconds" for stage in STAGES]
    ((*busy, bound_stage, bound_share, bound),) = query(
        f"SELECT {', '.join(columns)}, bound_stage, bound_share, bound FROM run_summary"
    )
    by_stage = dict(zip(STAGES, busy))
    assert all(seconds > 0 for seconds in busy), by_stage
    assert bound_stage == max(by_stage, key=by_stage.get)
    assert bound_share == pytest.approx(by_stage[bound_stage] / sum(busy))
    assert bound == f"{bound_stage}-bound: {round(100 * bound_share)}% of busy time"
    metadata = result.asset_materializations_for_node("image_classification_run")[0].metadata
    assert metadata["bound"].value == bound and metadata[f"{bound_stage}_busy_seconds"].value > 0
