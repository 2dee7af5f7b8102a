"""An upgrade that slows a model down is a change point in its series, named by what changed; an upgrade that
does not is nothing. One small DuckDB file of hand-made runs, with every metrics asset and check materialized once."""

import pytest

from bench_assets_tests.run_history import HandMadeRun, build_metrics, fingerprint_with

RUNS_EACH_SIDE = 5  # runs 1-5 before the upgrade, 6-10 after
JITTER = (1.0, 1.02, 0.99, 1.01, 0.98)  # run-to-run noise of a quiet machine


def history(model: str, after_ms: float, **upgrade) -> list[HandMadeRun]:
    """Batches of 40 ms before, `after_ms` after, the upgraded fingerprint from run 6 on."""
    return [HandMadeRun(model, [(4, 40.0 * j)] * 3) for j in JITTER] + [
        HandMadeRun(model, [(4, after_ms * j)] * 3, fingerprint=fingerprint_with(**upgrade)) for j in JITTER
    ]


def remade_weights_history(model: str, weights_source: str, package: str, before: str, after: str) -> list[HandMadeRun]:
    """`package` upgraded at run 6 with a 30% slowdown, the weights made again by it (other bytes)."""
    return [
        HandMadeRun(model, [(4, 40.0 * j)] * 3, weights_source=weights_source,
                    fingerprint=fingerprint_with(packages={package: before}))
        for j in JITTER
    ] + [
        HandMadeRun(model, [(4, 52.0 * j)] * 3, weights_source=weights_source, weights_sha256="f" * 64,
                    fingerprint=fingerprint_with(packages={package: after}))
        for j in JITTER
    ]


HISTORY = {
    # torch 2.14.1 -> 2.15.0 at run 6 with a 30% slowdown (52 ms batches for 40 ms).
    "torch-slower": history("torch-slower", 52.0, packages={"torch": "2.15.0"}),
    "torch-same-speed": history("torch-same-speed", 40.0, packages={"torch": "2.15.0"}),
    "commit-slower": history("commit-slower", 52.0, commit="e4f5a6b7c8d9"),
    # Weights the platform makes from the seed are made again by an upgrade, with other bytes: still the same work.
    # transformers 4.57.6 -> 5.24.0 initializes seeded random weights otherwise; a scikit-learn pickle records the
    # version that fitted it.
    "transformers-slower": remade_weights_history("transformers-slower", "seeded_random", "transformers", "4.57.6", "5.24.0"),
    "scikit-learn-slower": remade_weights_history("scikit-learn-slower", "fitted", "scikit-learn", "1.5.2", "1.9.1"),
    # Five quiet runs, then a latest one 30% slower; and a series of two runs.
    "latest-slower": [HandMadeRun("latest-slower", [(4, 40.0 * j)] * 3) for j in JITTER]
    + [HandMadeRun("latest-slower", [(4, 52.0)] * 3)],
    "two-runs": [HandMadeRun("two-runs", [(4, 40.0)] * 3), HandMadeRun("two-runs", [(4, 52.0)] * 3)],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    metrics = build_metrics(tmp_path_factory.mktemp("upgrades"), [run for runs in HISTORY.values() for run in runs])
    return {"metrics": metrics, "ids": metrics.ids_by_model(HISTORY)}


def test_an_upgrade_stays_in_its_series(built):
    query = built["metrics"].query
    assert query(
        "SELECT count(DISTINCT comparison_key), count(DISTINCT fingerprint_id), max(run_number) FROM run_summary "
        "WHERE model = 'torch-slower'"
    ) == [(1, 2, 2 * RUNS_EACH_SIDE)]


def test_an_upgrade_with_a_slowdown_is_a_regression_at_its_run_naming_the_change(built):
    query, ids = built["metrics"].query, built["ids"]["torch-slower"]
    rows = query(
        "SELECT r.previous_run_id, r.run_id, s.run_number, r.change_pct, r.what_changed FROM regressions r "
        "JOIN run_summary s USING (run_id) WHERE r.model = 'torch-slower' AND r.metric = 'inference_items_per_second'"
    )
    ((previous_run, run, run_number, change_pct, what_changed),) = rows
    assert (previous_run, run, run_number) == (ids[RUNS_EACH_SIDE - 1], ids[RUNS_EACH_SIDE], RUNS_EACH_SIDE + 1)
    assert change_pct == pytest.approx(-100 * (1 - 40 / 52), abs=2)
    assert what_changed == "torch 2.14.1 -> 2.15.0"
    (commit_change,) = query(
        "SELECT what_changed FROM regressions WHERE model = 'commit-slower' AND metric = 'inference_items_per_second'"
    )
    assert commit_change == ("commit a1b2c3d -> e4f5a6b",)


@pytest.mark.parametrize("model, what_changed", [
    ("transformers-slower", "transformers 4.57.6 -> 5.24.0"), ("scikit-learn-slower", "scikit-learn 1.5.2 -> 1.9.1"),
])
def test_an_upgrade_that_remakes_the_platforms_own_weights_stays_in_its_series_and_its_slowdown_is_seen(
    built, model, what_changed
):
    query = built["metrics"].query
    assert query(
        "SELECT count(DISTINCT comparison_key), count(DISTINCT weights_sha256) FROM run_summary WHERE model = ?",
        [model],
    ) == [(1, 2)]
    ((run_number, change),) = query(
        "SELECT s.run_number, r.what_changed FROM regressions r JOIN run_summary s USING (run_id) "
        "WHERE r.model = ? AND r.metric = 'inference_items_per_second'", [model]
    )
    assert (run_number, change) == (RUNS_EACH_SIDE + 1, what_changed)


def test_the_same_upgrade_without_a_slowdown_reports_nothing(built):
    query = built["metrics"].query
    assert query("SELECT count(*) FROM change_points WHERE run_id IN (SELECT run_id FROM run_summary "
                 "WHERE model = 'torch-same-speed')") == [(0,)]
    assert query("SELECT count(*) FROM regressions WHERE model = 'torch-same-speed'") == [(0,)]


def test_the_check_and_the_report_name_what_changed(built):
    metrics = built["metrics"]
    (evaluation,) = [
        e for e in metrics.result.get_asset_check_evaluations()
        if e.check_name == "no_recent_regression_in_inference_items_per_second"
    ]
    assert not evaluation.passed
    assert evaluation.metadata["what_changed"].value in (
        "torch 2.14.1 -> 2.15.0", "commit a1b2c3d -> e4f5a6b", "transformers 4.57.6 -> 5.24.0",
        "scikit-learn 1.5.2 -> 1.9.1",
    )
    assert "torch 2.14.1 -> 2.15.0" in evaluation.metadata["all_recent"].value
    report = metrics.report.read_text()
    assert "torch 2.14.1 -&gt; 2.15.0" in report and "commit a1b2c3d -&gt; e4f5a6b" in report


def test_the_latest_run_is_judged_against_the_series_own_run_to_run_spread(built):
    metrics = built["metrics"]
    verdicts = dict(metrics.query("SELECT model, verdict FROM latest_against_previous"))
    assert verdicts["latest-slower"] == "slower"
    assert verdicts["torch-same-speed"] == "no clear change"
    assert verdicts["two-runs"] == "too few runs to tell"
    assert metrics.query(
        "SELECT run_id, runs_before FROM latest_against_previous WHERE model = 'latest-slower'"
    ) == [(built["ids"]["latest-slower"][-1], RUNS_EACH_SIDE)]
    section = metrics.report.read_text().split('id="latest-against-previous"', 1)[1].split("</section>", 1)[0]
    assert "latest-slower" in section and "too few runs to tell" in section


def test_compare_judges_sets_of_repeated_runs_and_a_run_against_its_series_spread(built, capsys):
    from bench_assets.cli.compare import main as compare

    ids, database = built["ids"], str(built["metrics"].database)
    before, latest = ids["latest-slower"][:-1], ids["latest-slower"][-1]
    assert compare([",".join(before[:2]), ",".join(before[2:]), "--database", database, "--resamples", "50"]) == 0
    assert capsys.readouterr().out.splitlines()[3].endswith(": no clear change")
    assert compare([before[-1], latest, "--database", database, "--resamples", "50"]) == 0
    assert capsys.readouterr().out.splitlines()[3].endswith(": slower")
    same_speed = ids["torch-same-speed"]
    assert compare([",".join(same_speed[:5]), ",".join(same_speed[5:]), "--database", database]) == 0
    assert capsys.readouterr().out.splitlines()[3].endswith(": no clear change")
    two = ids["two-runs"]
    assert compare([two[0], two[1], "--database", database, "--resamples", "50"]) == 0
    assert capsys.readouterr().out.splitlines()[3].endswith(": too few runs to tell")
