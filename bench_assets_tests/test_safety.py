"""Safety: no pickled code runs, images only from the allowed roots, no SQL injection, the UI on loopback only."""

import ast
import json
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterUnknownPartitionError
import torch
from PIL import Image
from transformers import BertConfig

from bench_assets.store import runs as results
from bench_assets.store import schema
from bench_assets_tests.assets import openimage_sample
from bench_assets_tests.assets import image_classification_run
from bench_assets.benchmarks.image_classification.models import IMAGE_MODELS
from bench_assets.benchmarks.language_modeling.models import LANGUAGE_MODELING, build_bert_for_masked_lm
from bench_assets.spec import ModelSpec
from bench_assets.run.weights import load_state_dict, prepare_weights
from bench_assets.vision import image_pipeline
from bench_assets.benchmarks.language_modeling import pipeline as language_modeling
from bench_assets.vision.image_pipeline import OutsideRoots, allowed_image_path
from bench_assets_tests.conftest import materialize, with_settings

PACKAGE = Path(__file__).resolve().parent.parent / "bench_assets"
TINY_BERT = ModelSpec(
    "tiny-bert",
    LANGUAGE_MODELING,
    build_bert_for_masked_lm,
    {"config": BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)},
)
HOSTILE = "x'); DROP TABLE runs; --"


class RunsCode:
    """Unpickling this runs code: here, harmlessly, it creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.fixture
def code_running_pickle(tmp_path) -> tuple[Path, Path]:
    """A .pth file that looks like a state dict and runs code when fully unpickled, and the marker it would create."""
    marker = tmp_path / "code-ran"
    path = tmp_path / "weights" / "efficientnet_lite0.pth"
    path.parent.mkdir()
    torch.save({"conv_stem.weight": RunsCode(marker)}, path)
    # The payload is real: an unsafe load runs it.
    proof = tmp_path / "proof"
    torch.save({"weight": RunsCode(proof)}, tmp_path / "proof.pth")
    torch.load(tmp_path / "proof.pth", weights_only=False)
    assert proof.exists()
    return path, marker


def test_a_pickle_that_runs_code_is_refused_everywhere_weights_are_loaded(code_running_pickle, tmp_path):
    path, marker = code_running_pickle
    with pytest.raises(ValueError, match=f"weights file {path} cannot be loaded as a state dict"):
        load_state_dict(path)
    with pytest.raises(ValueError, match="cannot be loaded as a state dict"):
        prepare_weights(IMAGE_MODELS["efficientnet_lite0"], tmp_path / "out.pt", configured=path, seed=0)
    # The Beam model handlers load with weights_only=True too.
    handlers = [
        image_pipeline.model_handler(IMAGE_MODELS["efficientnet_lite0"], str(path), 1, 1, "CPU"),
        language_modeling.model_handler(TINY_BERT, str(path), language_modeling.BEAM_EXAMPLE, 1, 1, "CPU"),
    ]
    for handler in handlers:
        with pytest.raises(Exception, match="Weights only load failed"):
            handler.load_model()
    assert not marker.exists()
    assert not (tmp_path / "out.pt").exists()


def test_every_torch_load_in_the_package_is_weights_only():
    """Static check, so a new loader cannot slip in without weights_only=True."""
    loads, handler_args = [], []
    for source in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                keywords = {k.arg: k.value for k in node.keywords}
                if name in ("torch.load", "torch.jit.load") or name.endswith(".load_state_dict_from_url"):
                    loads.append((source.name, node.lineno, ast.unparse(keywords.get("weights_only", ast.Constant(None)))))
                if "load_model_args" in keywords:
                    handler_args.append((source.name, ast.unparse(keywords["load_model_args"])))
    assert loads and all(value == "True" for _, _, value in loads), loads
    # Every benchmark's PyTorch handler is made by pipeline/model_handlers.py, which loads weights only; the
    # embedding handler's load_model_args (pipeline/embeddings.py) are SentenceTransformer's (its device), and its
    # state dict is a torch.load above.
    pytorch_handler_args = [args for name, args in handler_args if name == "model_handlers.py"]
    assert pytorch_handler_args and all(args == "{'weights_only': True}" for args in pytorch_handler_args), handler_args
    assert {name for name, _ in handler_args} <= {"model_handlers.py", "embeddings.py"}


def test_image_paths_must_lie_inside_the_roots(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    inside = root / "images" / "a.jpg"
    inside.write_bytes(b"x")
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"x")
    (root / "images" / "link.jpg").symlink_to(outside)
    (root / "images" / "inner-link.jpg").symlink_to(inside)
    roots = [str(root)]

    assert allowed_image_path(str(inside), roots) == str(inside)
    assert allowed_image_path(str(root / "images" / "inner-link.jpg"), roots) == str(inside)
    monkeypatch.chdir(root)
    assert allowed_image_path("images/a.jpg", roots) == str(inside)  # relative: from the working directory
    for escaping in (
        str(outside),
        str(root / "images" / ".." / ".." / "outside.jpg"),
        str(root / "images" / "link.jpg"),
        "../outside.jpg",
        "/etc/passwd",
        str(root) + "-sibling/a.jpg",  # a prefix of the root's name is not inside it
        "file:///etc/passwd",
    ):
        with pytest.raises(OutsideRoots):
            allowed_image_path(escaping, roots)
    assert allowed_image_path("/etc/passwd", None) == "/etc/passwd"  # no roots: scripts and tests calling the pipeline


def test_an_image_list_pointing_outside_the_roots_is_refused_before_the_sample_is_built(bench_resources, tmp_path):
    source = tmp_path / "openimages"
    source.mkdir()
    inside = source / "inside.jpg"
    Image.new("RGB", (8, 8)).save(inside)
    outside = tmp_path / "secret" / "outside.jpg"
    outside.parent.mkdir()
    Image.new("RGB", (8, 8)).save(outside)
    image_list = source / "list.txt"
    image_list.write_text("inside.jpg\n../secret/outside.jpg\n")
    resources = with_settings(bench_resources, openimages_source=str(image_list))

    result = materialize([openimage_sample], resources, raise_on_error=False)
    assert not result.success
    message = "\n".join(str(event.step_failure_data.error) for event in result.get_step_failure_events())
    assert f"{image_list} names 1 image(s) outside the allowed image roots" in message
    assert str(outside) in message
    assert not resources["settings"].dataset_dir("openimage_sample").exists()


def test_values_with_sql_in_them_are_stored_as_values(tmp_path):
    database = str(tmp_path / "bench.duckdb")
    run_dir = tmp_path / "it's; DROP TABLE runs; --"
    run_dir.mkdir()
    (run_dir / "predictions-0.jsonl").write_text(json.dumps({
        "line": 1, "item_id": HOSTILE, "predicted_index": 1, "predicted_label": HOSTILE, "score": 0.5,
        "expected_label": HOSTILE, "batch_id": HOSTILE,
    }) + "\n")
    (run_dir / "failures-0.jsonl").write_text(json.dumps({"line": 2, "item_id": HOSTILE, "stage": "read", "reason": HOSTILE}) + "\n")
    (run_dir / "batches-0.jsonl").write_text(json.dumps({"batch_id": HOSTILE, "batch_size": 1, "latency_us": 1.0, "started_at": 0.0}) + "\n")
    record = results.RunRecord(
        run_id=HOSTILE, benchmark=HOSTILE, model=HOSTILE, profile=HOSTILE, runner=HOSTILE,
        runner_options={"pipeline_args": [HOSTILE]}, batching={HOSTILE: HOSTILE}, dataset_size=2,
        weights_source=HOSTILE, weights_sha256=HOSTILE, fingerprint={"k": HOSTILE}, fingerprint_id=HOSTILE,
        dagster_run_id=HOSTILE,
    )
    with duckdb.connect(database) as conn:
        results.start_run(conn, record)
        counts = results.finish_run(conn, HOSTILE, run_dir, [{"namespace": HOSTILE, "metric": HOSTILE, "value": 1.0, "unit": HOSTILE}])
        results.fail_run(conn, HOSTILE, HOSTILE)
        assert counts == {"predictions": 1, "failures": 1, "batches": 1, "stages": 0, "embeddings": 0, "lines_accounted": 2}
        assert conn.execute("SELECT run_id, model, profile, error FROM runs").fetchall() == [(HOSTILE,) * 4]
        assert conn.execute("SELECT item_id, predicted_label FROM predictions").fetchall() == [(HOSTILE, HOSTILE)]
        assert conn.execute("SELECT metric FROM metrics").fetchall() == [(HOSTILE,)]
        tables = {name for name, in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert tables == {
            "runs", "predictions", "failures", "batches", "stages", "embeddings", "metrics", "sweeps", "sweep_batches",
            "run_settings", "tunings", "trials",
        }
    for name in ("runs", "predictions_line", "Runs", "runs; DROP TABLE runs", "runs --", '"runs"'):
        if name in ("runs", "predictions_line"):
            assert schema.checked_name(name) == name
        else:
            with pytest.raises(ValueError, match="not a plain SQL name"):
                schema.checked_name(name)


def test_a_partition_key_with_sql_in_it_is_refused_before_the_run(bench_resources):
    with pytest.raises(DagsterUnknownPartitionError, match="Could not find a partition with key"):
        materialize([image_classification_run], bench_resources, partition_key=HOSTILE)
    with duckdb.connect(bench_resources["duckdb"].database, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_ui_listens_on_loopback_only():
    dry_run = subprocess.run(
        ["make", "-n", "ui"], cwd=PACKAGE.parent, capture_output=True, text=True, check=True,
        env={**os.environ, "MAKEFLAGS": ""},
    ).stdout
    (command,) = [line for line in dry_run.splitlines() if " dev " in line or line.rstrip().endswith(" dev")]
    assert "-h 127.0.0.1" in command or "--host 127.0.0.1" in command, command
