"""Each model's tuned configuration against Beam's default, side by side in one run, with the targets of issue 20.

    .venv/bin/python benchmarks/tuned_configurations.py [--results data/benchmarks.duckdb] [--profile quick]
        [--repeats 3] [--models efficientnet_lite0 resnet101 ...]

Reads each model's latest tuning on this machine from the `tuned_configuration` mart of `--results` (made by
`make bench TUNE=1`), then runs Beam's default and the tuned configuration alternately (default, tuned, tuned,
default, ...) `--repeats` times each, as real `make bench` runs (`--no-warehouse`) into a scratch results file
under data/tuned_configurations/, so drift in the machine's speed falls on both. Every figure is read from the
`run_summary` and `configuration_agreement` marts of those runs: the median over the repeats of items/s end to end
(with the model load in it, over this profile's input), after the load (the rate a larger input approaches: what
the tuner ranks by), and in the inference stage; the pipeline's rate over its slowest stage's (that stage's
busy time, recorded in the same run, over the wall time after the load); how close inference comes to the machine's
measured matmul peak in the run's precision (run_summary's utilization); and the accuracy guard's verdict on the
tuned runs, over the whole profile's input rather than the tuning's sample: a target counts as met only where the
guard passes there or does not apply.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import duckdb

from bench_assets.machine.fingerprint import cpu_model, environment_fingerprint, machine_id, usable_cores
from bench_assets.settings import default_data_dir

REPO = Path(__file__).resolve().parents[1]
WORK_DIR = Path(default_data_dir()) / "tuned_configurations"
# Issue 20's targets: the figure each is judged by, and the speed-up over Beam's default it asks for.
TARGETS = {
    "efficientnet_lite0": ("items_per_second_after_load", 2.5),
    "resnet101": ("inference_items_per_second", 1.3),
    "bert-base-uncased": ("items_per_second_after_load", 3.0),
    "distilbert-base-uncased-finetuned-sst-2-english": ("items_per_second_after_load", 2.0),
}
STAGES = ("read", "preprocess", "inference", "write")


def tuned_configurations(results: Path, models: list[str]) -> dict[str, dict]:
    """The latest tuning of each model on this machine: {model: the run config fields it changes}."""
    this_machine = machine_id(environment_fingerprint("direct", {}))
    with duckdb.connect(str(results), read_only=True) as conn:
        rows = conn.execute(
            "SELECT model, changes FROM tuned_configuration WHERE machine_id = ? AND run_id IS NOT NULL "
            "QUALIFY row_number() OVER (PARTITION BY model ORDER BY ended_at DESC) = 1",
            [this_machine],
        ).fetchall()
    tuned = {model: json.loads(changes) for model, changes in rows}
    missing = [model for model in models if model not in tuned]
    if missing:
        sys.exit(f"no tuning of {', '.join(missing)} on this machine in {results}: run `make bench TUNE=1 "
                 f"MODELS=\"{' '.join(missing)}\"` first")
    return {model: tuned[model] for model in models}


def bench_run(model: str, profile: str, changes: dict) -> dict:
    """One `make bench` run of the model in a configuration; its figures from the marts."""
    env = {**os.environ, "BENCH_DATA_DIR": str(WORK_DIR), "DAGSTER_HOME": str(WORK_DIR / "dagster_home"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    config = [f"{name}={value}" for name, value in sorted(changes.items())]
    subprocess.run(
        [sys.executable, "-m", "bench_assets.cli.bench", "--profile", profile, "--models", model, "--no-warehouse",
         *(["--config", *config] if config else [])],
        cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL,
    )
    with duckdb.connect(str(WORK_DIR / "benchmarks.duckdb"), read_only=True) as conn:
        cursor = conn.execute(
            "SELECT s.*, a.passes AS guard_passes, a.guard_applies FROM run_summary AS s "
            "LEFT JOIN configuration_agreement AS a USING (run_id) WHERE s.model = ? ORDER BY s.started_at DESC LIMIT 1",
            [model],
        )
        names = [column[0] for column in cursor.description]
        run = dict(zip(names, cursor.fetchone()))
    if not run["is_complete"] or run["failures"]:
        sys.exit(f"{model} {config or 'Beam default'}: run {run['run_id']} lost items or had failures")
    slowest = max(run[f"{stage}_busy_seconds"] or 0 for stage in STAGES)
    run["over_slowest_stage"] = slowest / (run["wall_seconds"] - run["load_model_latency_ms"] / 1000)
    # run_summary's utilization: a share of the measured matmul peak in the run's precision (none above it). An
    # int8 model's multiply-adds are not the float ones the peak counts: no share for it.
    run["of_peak"] = run["utilization"] if run["quantization"] == "none" else None
    return run


def median(runs: list[dict], name: str) -> float | None:
    values = [run[name] for run in runs if run[name] is not None]
    return statistics.median(values) if values else None


def target_verdict(ratio: float, target: float, guard: set[bool]) -> str:
    """A speed-up counts only where the tuned runs predict as well as Beam's default (the accuracy guard passes on
    every run, or does not apply: random weights)."""
    if False in guard:
        return "NOT met: the accuracy guard fails on the tuned runs"
    return "met" if ratio >= target else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path(default_data_dir()) / "benchmarks.duckdb")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(TARGETS))
    args = parser.parse_args()
    tuned = tuned_configurations(args.results, args.models)
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    (WORK_DIR / "dagster_home").mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", WORK_DIR / "dagster_home" / "dagster.yaml")
    print(f"machine: {cpu_model()}, {usable_cores()} usable cores; profile {args.profile}, "
          f"{args.repeats} runs of each configuration, alternating; medians")
    print("| model | configuration | items/s end to end | after load | inference stage | load s | bound "
          "| pipeline / slowest stage | inference / matmul peak | accuracy guard |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    verdicts = []
    for model in args.models:
        configurations = {"Beam default": {}, "tuned": tuned[model]}
        runs = {label: [] for label in configurations}
        for repeat in range(args.repeats):
            order = list(configurations) if repeat % 2 == 0 else list(reversed(configurations))
            for label in order:
                run = bench_run(model, args.profile, configurations[label])
                runs[label].append(run)
                # Progress on stderr (each run takes a minute or more); the table goes to stdout.
                print(f"{model} {label} run {repeat + 1} of {args.repeats}: "
                      f"{run['items_per_second_after_load']:.1f} items/s after the load", file=sys.stderr, flush=True)
        guards = {}
        for label, changes in configurations.items():
            done = runs[label]
            guard = guards[label] = {run["guard_passes"] for run in done if run["guard_applies"]}
            of_peak = median(done, "of_peak")
            print(f"| {model} | {label}: {', '.join(f'{k}={v}' for k, v in sorted(changes.items())) or '-'} "
                  f"| {median(done, 'end_to_end_items_per_second'):.1f} | {median(done, 'items_per_second_after_load'):.1f} "
                  f"| {median(done, 'inference_items_per_second'):.1f} | {median(done, 'load_model_latency_ms') / 1000:.1f} "
                  f"| {done[-1]['bound']} | {median(done, 'over_slowest_stage'):.2f} "
                  f"| {'-' if of_peak is None else f'{of_peak:.0%}'} "
                  f"| {'-' if label == 'Beam default' or not guard else ('passes' if guard == {True} else 'FAILS')} |")
        figure, target = TARGETS.get(model, ("items_per_second_after_load", None))
        ratios = {name: median(runs["tuned"], name) / median(runs["Beam default"], name) for name in (
            "end_to_end_items_per_second", "items_per_second_after_load", "inference_items_per_second")}
        end_to_end_of_inference = (median(runs["tuned"], "items_per_second_after_load")
                                   / median(runs["tuned"], "inference_items_per_second"))
        verdicts.append(
            f"{model}: tuned / Beam default: {ratios['end_to_end_items_per_second']:.2f} end to end with the load, "
            f"{ratios['items_per_second_after_load']:.2f} after it, {ratios['inference_items_per_second']:.2f} in "
            f"the inference stage; tuned end to end after the load / its inference stage "
            f"{end_to_end_of_inference:.2f}"
            + (f"; target {target}x by {figure}: {target_verdict(ratios[figure], target, guards['tuned'])}"
               if target else "")
        )
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
