"""Results from several machines in one file: merged by run_id (twice adds nothing, either order gives the same
tables), a file of a newer schema refused, an older one migrated, and the marts and report show the machines
side by side."""

import shutil
from datetime import datetime, timezone

import duckdb
import pytest

from bench_assets.cli.merge import main as merge
from bench_assets.store import runs as results
from bench_assets.store.merge import MERGED_TABLES
from bench_assets_tests.run_history import HandMadeRun, build_warehouse, fingerprint_with, write_runs

AMX_MACHINE = fingerprint_with()  # Test CPU (fam 6 model 167) AVX-512 BF16, 2 cores
AVX2_MACHINE = fingerprint_with(machine={
    "cpu_vendor": "AuthenticAMD", "cpu_family": "25", "cpu_model_number": "1", "cpu_model": "AMD EPYC 7B13",
    "instruction_sets": ["avx2", "fma"], "torch_cpu_capability": "AVX2",
})


def tables(database) -> dict[str, list[tuple]]:
    with duckdb.connect(str(database), read_only=True) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in MERGED_TABLES}


@pytest.fixture(scope="module")
def machines(tmp_path_factory):
    root = tmp_path_factory.mktemp("machines")
    files = {}
    for name, fingerprint, latency_ms in (("amx", AMX_MACHINE, 20.0), ("avx2", AVX2_MACHINE, 40.0)):
        files[name] = root / f"{name}.duckdb"
        run_ids = write_runs(files[name], [HandMadeRun("resnet50", [(4, latency_ms)] * 3, fingerprint=fingerprint)
                                           for _ in range(3)], root / name)
        # A tuning whose one trial is the first run: it comes with its trials.
        with duckdb.connect(str(files[name])) as conn:
            results.start_tuning(conn, {
                "tuning_id": name, "benchmark": "image_classification", "model": "resnet50", "profile": "smoke",
                "sample_items": 12, "budget_seconds": 60.0, "dagster_run_id": None,
                "started_at": datetime.now(timezone.utc),
            })
            results.record_trial(conn, name, 1, "beam_default", {}, run_ids[0], "ran", None)
    return root, files


def test_two_machines_files_merged_in_either_order_and_twice_give_the_same_tables(machines, tmp_path, capsys):
    _, files = machines
    amx_first, avx2_first = tmp_path / "amx_first.duckdb", tmp_path / "avx2_first.duckdb"
    shutil.copy(files["amx"], amx_first)
    shutil.copy(files["avx2"], avx2_first)

    assert merge([str(files["avx2"]), "--into", str(amx_first)]) == 0
    printed = capsys.readouterr().out
    assert merge([str(files["amx"]), "--into", str(avx2_first)]) == 0
    capsys.readouterr()
    once = tables(amx_first)
    assert merge([str(files["avx2"]), "--into", str(amx_first)]) == 0  # again: nothing added
    again = capsys.readouterr().out

    assert tables(amx_first) == once == tables(avx2_first)
    assert len(once["runs"]) == 6 and len(once["predictions"]) == 6 * 12
    assert len(once["tunings"]) == 2 and len(once["trials"]) == 2
    runs_line = next(line for line in printed.splitlines() if line.startswith("runs "))
    assert runs_line.split() == ["runs", "3", "6", "3"]
    assert next(line for line in again.splitlines() if line.startswith("runs ")).split() == ["runs", "6", "6", "0"]


def test_a_file_of_a_newer_schema_is_refused_and_an_older_one_migrated(machines, tmp_path, capsys):
    _, files = machines
    newer, older, into = tmp_path / "newer.duckdb", tmp_path / "older.duckdb", tmp_path / "into.duckdb"
    for copy in (newer, older, into):
        shutil.copy(files["avx2"] if copy != into else files["amx"], copy)
    with duckdb.connect(str(newer)) as conn:
        conn.execute("ALTER TABLE runs ADD COLUMN energy_joules DOUBLE")
    with duckdb.connect(str(older)) as conn:
        conn.execute("ALTER TABLE runs DROP COLUMN machine_label")
        conn.execute("DROP TABLE sweep_batches")
    before = tables(into)

    assert merge([str(newer), "--into", str(into)]) == 2
    error = capsys.readouterr().err
    assert "newer schema" in error and "energy_joules" in error
    assert tables(into) == before
    assert merge([str(older), "--into", str(into)]) == 0
    with duckdb.connect(str(into), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE machine_label IS NULL").fetchone() == (3,)


def test_the_marts_and_the_report_show_each_model_across_machines(machines, tmp_path):
    root, files = machines
    database = tmp_path / "bench.duckdb"
    shutil.copy(files["amx"], database)
    assert merge([str(files["avx2"]), "--into", str(database)]) == 0

    built = build_warehouse(tmp_path, database, [])

    assert built.result.success
    rows = built.query(
        "SELECT machine_label, runs, machines, inference_items_per_second, relative_to_fastest "
        "FROM machine_comparison WHERE model = 'resnet50' ORDER BY relative_to_fastest DESC"
    )
    assert rows == [
        ("Test CPU (fam 6 model 167) AVX-512 BF16, 2 cores", 3, 2, pytest.approx(200.0), 1.0),
        ("AMD EPYC 7B13 (fam 25 model 1) AVX2, 2 cores", 3, 2, pytest.approx(100.0), 0.5),
    ]
    machines_section = built.report.read_text().split('id="machines"', 1)[1].split("</section>", 1)[0]
    assert "AMD EPYC 7B13 (fam 25 model 1) AVX2, 2 cores" in machines_section
    assert "Test CPU (fam 6 model 167) AVX-512 BF16, 2 cores" in machines_section
