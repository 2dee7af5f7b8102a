"""A machine is identified by what decides its speed; what changes under test is recorded and splits no series."""

import re

from bench_assets.machine import fingerprint as fingerprints
from bench_assets.machine.fingerprint import cpu_identity, environment_fingerprint, fingerprint_id, machine_id, machine_label
from bench_assets.store.runs import RunRecord
from bench_assets_tests.run_history import fingerprint_with

# /proc/cpuinfo's first processor on two machines that both say "AMD EPYC": Zen 3 with AVX2 only, and Zen 4.
ZEN3_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13 64-Core Processor
stepping\t: 1
flags\t\t: fpu sse sse2 avx fma avx2 bmi2

processor\t: 1
vendor_id\t: AuthenticAMD
"""
ZEN4_FLAGS = "fpu sse sse2 avx fma avx2 avx512f avx512_bf16 avx512_vnni bmi2"


def run_record(fingerprint: dict) -> RunRecord:
    return RunRecord(
        run_id="r", benchmark="image_classification", model="resnet101", profile="smoke", runner="direct",
        runner_options={}, batching={"precision": "bf16"}, dataset_size=23, weights_source="shipped",
        weights_sha256="0" * 64, fingerprint=fingerprint, fingerprint_id=fingerprint_id(fingerprint),
        dagster_run_id=None,
    )


def test_two_machines_that_differ_only_in_one_instruction_set_never_share_a_machine_or_a_series():
    with_bf16 = fingerprint_with(machine={"instruction_sets": ["avx2", "fma", "avx512f", "avx512_bf16"]})
    without = fingerprint_with(machine={"instruction_sets": ["avx2", "fma", "avx512f"]})

    assert machine_id(with_bf16) != machine_id(without)
    assert fingerprint_id(with_bf16) != fingerprint_id(without)
    assert run_record(with_bf16).comparison_key != run_record(without).comparison_key
    assert machine_label(with_bf16) == "Test CPU (fam 6 model 167) AVX-512 BF16, 2 cores"
    assert machine_label(without) == "Test CPU (fam 6 model 167) AVX-512, 2 cores"


def test_each_part_of_the_machine_is_part_of_its_identity():
    base = fingerprint_with()
    for change in (
        {"cpu_vendor": "AuthenticAMD"}, {"cpu_family": "25"}, {"cpu_model_number": "1"}, {"cpu_stepping": "2"},
        {"torch_cpu_capability": "AVX2"}, {"memory_gib": 64}, {"logical_cores": 16},
        {"gpu": {"name": "NVIDIA H100", "memory_gib": 80, "driver": "550.54.15", "cuda": "12.4"}},
    ):
        assert machine_id(fingerprint_with(machine=change)) != machine_id(base), change
    gpu = {"name": "NVIDIA H100", "memory_gib": 80, "driver": "550.54.15", "cuda": "12.4"}
    for change in ({"driver": "560.28.03"}, {"cuda": "12.6"}, {"memory_gib": 94}):
        assert machine_id(fingerprint_with(machine={"gpu": {**gpu, **change}})) != machine_id(
            fingerprint_with(machine={"gpu": gpu})
        ), change
    assert machine_label(fingerprint_with(machine={"gpu": gpu})).endswith(
        ", NVIDIA H100 80 GiB (driver 550.54.15, CUDA 12.4)"
    )


def test_library_versions_and_the_commit_are_recorded_but_split_no_series():
    before = fingerprint_with()
    upgraded = fingerprint_with(packages={"torch": "2.15.0"}, commit="e4f5a6b7c8d9", python="3.13.1")

    assert machine_id(before) == machine_id(upgraded)
    assert run_record(before).comparison_key == run_record(upgraded).comparison_key
    assert fingerprint_id(before) != fingerprint_id(upgraded)  # the environment as a whole did change


def test_thread_count_and_runner_options_split_a_series():
    base = run_record(fingerprint_with())
    assert run_record(fingerprint_with(torch_threads=1)).comparison_key != base.comparison_key
    dask = RunRecord(**{**base.__dict__, "runner": "dask", "runner_options": {"workers": 2}})
    assert dask.comparison_key != base.comparison_key


def test_the_cpu_is_read_from_proc_cpuinfo_with_its_inference_instruction_sets():
    zen3 = cpu_identity(ZEN3_CPUINFO)
    zen4 = cpu_identity(ZEN3_CPUINFO.replace("avx fma avx2 bmi2", ZEN4_FLAGS))

    assert (zen3["cpu_vendor"], zen3["cpu_family"], zen3["cpu_model_number"], zen3["cpu_stepping"]) == (
        "AuthenticAMD", "25", "1", "1"
    )
    assert zen3["instruction_sets"] == ["avx2", "fma"]
    assert zen4["instruction_sets"] == ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"]
    label = machine_label({"machine": {**zen3, "architecture": "x86_64", "logical_cores": 2}})
    assert label == "AMD EPYC 7B13 (fam 25 model 1) AVX2, 2 cores"
    assert machine_label({"machine": {**zen4, "architecture": "x86_64", "logical_cores": 2}}) == (
        "AMD EPYC 7B13 (fam 25 model 1) AVX-512 BF16 VNNI, 2 cores"
    )


def test_this_machine_records_its_identity_and_the_commit_that_ran(tmp_path, monkeypatch):
    fingerprint = environment_fingerprint("direct", {})

    machine = fingerprint["machine"]
    assert set(machine["instruction_sets"]) <= set(fingerprints.INSTRUCTION_SETS)
    assert machine["torch_cpu_capability"] and machine["logical_cores"] >= 1 and machine["memory_gib"] >= 1
    assert re.fullmatch(r"[0-9a-f]{40}", fingerprint["commit"])  # the tests run from a git checkout
    monkeypatch.setattr(fingerprints, "PROJECT_ROOT", tmp_path)
    assert fingerprints.project_commit() == "unknown"
