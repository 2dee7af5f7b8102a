"""The loop a person repeats while trying a setting: what a repeated invocation does not do again."""

from bench_assets.defs import benchmarks as benchmark_defs
from bench_assets.settings import BenchmarkSettings
from bench_assets_tests.assets import image_model_weights
from bench_assets_tests.conftest import materialize

MODEL = "efficientnet_lite0"


def test_weights_prepared_from_the_same_inputs_are_not_prepared_again(tmp_path, monkeypatch):
    prepared = []

    def counting_prepare(spec, out_path, configured, seed):
        prepared.append(seed)
        return real_prepare(spec, out_path, configured, seed)

    real_prepare = benchmark_defs.prepare_weights
    monkeypatch.setattr(benchmark_defs, "prepare_weights", counting_prepare)

    def weights_metadata(settings: BenchmarkSettings) -> dict:
        result = materialize([image_model_weights], {"settings": settings}, partition_key=MODEL)
        (materialization,) = result.asset_materializations_for_node(image_model_weights.op.name)
        return {key: value.value for key, value in materialization.metadata.items()}

    settings = BenchmarkSettings(profile="smoke", data_dir=str(tmp_path))
    first = weights_metadata(settings)
    written = settings.weights_path(MODEL).stat().st_mtime_ns
    again = weights_metadata(settings)
    assert prepared == [settings.seed]
    assert (first["reused"], again["reused"]) == (False, True)
    assert again["sha256"] == first["sha256"] and again["gflops_per_item"] == first["gflops_per_item"] > 0
    assert settings.weights_path(MODEL).stat().st_mtime_ns == written

    # Another seed is another input: prepared again.
    reseeded = weights_metadata(BenchmarkSettings(profile="smoke", data_dir=str(tmp_path), seed=settings.seed + 1))
    assert prepared == [settings.seed, settings.seed + 1] and reseeded["reused"] is False
    # A file changed since it was prepared is prepared again, whatever its record says.
    settings.weights_path(MODEL).write_bytes(b"changed")
    assert weights_metadata(BenchmarkSettings(profile="smoke", data_dir=str(tmp_path), seed=settings.seed + 1))["reused"] is False
    assert len(prepared) == 3
