"""Run configurations: precision (bf16/fp16 autocast), memory layout (channels_last), quantization, torch.compile
and the ONNX Runtime and OpenVINO backends, applied where Beam builds the model, recorded with the run, part of what
makes runs comparable, and refused before any work where the benchmark cannot run them."""

import pytest
import torch
from apache_beam.ml.inference.pytorch_inference import default_tensor_inference_fn
from torch._dynamo.utils import counters as dynamo_counters
from transformers import BertConfig

from bench_assets.datasets.bert_vocabulary import load_bert_tokenizer
from bench_assets.benchmarks.language_modeling import BENCHMARK as LANGUAGE_MODELING_BENCHMARK
from bench_assets.benchmarks.language_modeling import pipeline as language_modeling
from bench_assets.benchmarks.language_modeling.models import build_bert_for_masked_lm
from bench_assets.benchmarks.sentiment import pipeline as sentiment
from bench_assets.defs.benchmarks import BENCHMARK_DEFINITIONS
from bench_assets.vision.imagenet import build_timm_model
from bench_assets.run.configuration import ModelConfiguration
from bench_assets.pipeline.model_handlers import (
    RUNTIME_HANDLERS, AutocastInference, CalibrationSample, PositionalModel, calibrated_int8, configure_model,
    import_openvino, sentence_inputs,
)
from bench_assets.pipeline.prepare_items import PrepareItems
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.spec import ModelSpec
from bench_assets_tests.assets import (
    image_classification_run,
    image_model_weights,
    language_model_weights,
    language_modeling_run,
    openimage_sample,
    sentence_corpus,
)
from bench_assets_tests.conftest import materialize
from bench_assets_tests.test_bad_config import assert_nothing_started, step_error
from bench_assets_tests.test_bad_input import PREDICTED, sentence_cases, write_lines
from bench_assets_tests.test_sentiment import TINY_DISTILBERT

table_rows_run = BENCHMARK_DEFINITIONS["table_rows"].run
TINY_BERT = ModelSpec(
    "tiny-bert", "language_modeling", build_bert_for_masked_lm,
    {"config": BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)},
)


def run_config(asset: str, **config) -> dict:
    return {"ops": {asset: {"config": config}}}


@pytest.mark.parametrize(
    "asset, partition, config, expected",
    [
        (language_modeling_run, "all-minilm-l6-v2", {"memory_format": "channels_last"},
         "memory_format 'channels_last' does not apply to the language_modeling benchmark; accepted values: ['contiguous']"),
        (image_classification_run, "efficientnet_lite0", {"precision": "fp16"},
         "precision 'fp16' needs device 'GPU' (CPUs lack fast fp16 kernels); on CPU use 'bf16'"),
        (image_classification_run, "efficientnet_lite0", {"quantization": "dynamic_int8"},
         "quantization 'dynamic_int8' does not apply to the image_classification benchmark; accepted values: "
         "['none', 'static_int8']"),
        (language_modeling_run, "all-minilm-l6-v2", {"quantization": "dynamic_int8", "precision": "bf16"},
         "quantization 'dynamic_int8' runs on device 'CPU' in precision 'fp32'"),
        (table_rows_run, "linear_regression", {"backend": "openvino"},
         "backend 'openvino' does not apply to the table_rows benchmark; accepted values: ['pytorch']"),
        (language_modeling_run, "all-minilm-l6-v2", {"backend": "openvino", "quantization": "dynamic_int8"},
         "quantization 'dynamic_int8' does not apply with backend 'openvino' (it runs the exported fp32 model on "
         "OpenVINO's CPU plugin); accepted values: ['none', 'static_int8']"),
        (language_modeling_run, "all-minilm-l6-v2", {"backend": "onnxruntime", "quantization": "static_int8"},
         "quantization 'static_int8' does not apply with backend 'onnxruntime' (it runs the exported fp32 model on "
         "ONNX Runtime's CPU provider); accepted values: ['none']"),
        (image_classification_run, "efficientnet_lite0", {"quantization": "static_int8"},
         "quantization 'static_int8' needs backend 'openvino', got 'pytorch'"),
        (image_classification_run, "efficientnet_lite0", {"backend": "onnxruntime", "precision": "bf16"},
         "precision 'bf16' does not apply with backend 'onnxruntime' (it runs the exported fp32 model on ONNX "
         "Runtime's CPU provider); accepted values: ['fp32']"),
        (image_classification_run, "efficientnet_lite0", {"backend": "onnxruntime", "memory_format": "channels_last"},
         "memory_format 'channels_last' does not apply with backend 'onnxruntime' (it runs the exported fp32 model on "
         "ONNX Runtime's CPU provider); accepted values: ['contiguous']"),
        (image_classification_run, "efficientnet_lite0", {"backend": "onnxruntime", "compile": "torch.compile"},
         "compile 'torch.compile' does not apply with backend 'onnxruntime' (it runs the exported fp32 model on ONNX "
         "Runtime's CPU provider); accepted values: ['none']"),
    ],
)
def test_a_configuration_the_benchmark_cannot_run_fails_before_any_work(bench_resources, asset, partition, config, expected):
    name = asset.key.to_user_string()
    result = materialize([asset], bench_resources, partition_key=partition, run_config=run_config(name, **config),
                         raise_on_error=False)
    assert expected in step_error(result)
    assert_nothing_started(bench_resources)


def test_channels_last_and_quantization_are_applied_to_the_loaded_model_and_autocast_around_inference():
    model = configure_model(build_timm_model("efficientnet_lite0"), ModelConfiguration(memory_format="channels_last"))
    model.eval()
    convolution = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert convolution.weight.is_contiguous(memory_format=torch.channels_last)
    assert not convolution.weight.is_contiguous()
    (result,) = AutocastInference(default_tensor_inference_fn, "bf16")([torch.rand(3, 224, 224)], model, torch.device("cpu"), {})
    assert result.inference.dtype == torch.bfloat16 and result.inference.shape == (1000,)
    quantized = configure_model(torch.nn.Sequential(torch.nn.Linear(8, 4)), ModelConfiguration(quantization="dynamic_int8"))
    assert type(quantized[0]).__name__ == "Linear" and quantized[0].__module__.startswith("torch.ao.nn.quantized.dynamic")


@pytest.mark.slow
def test_configured_runs_are_recorded_apart_and_predict_what_fp32_predicts(bench_resources, query, no_network):
    materialize([openimage_sample, sentence_corpus], bench_resources)
    configurations = [{}, {"precision": "bf16"}, {"memory_format": "channels_last"}]
    for config in configurations:
        result = materialize([image_model_weights, image_classification_run], bench_resources, partition_key="efficientnet_lite0",
                             run_config=run_config("image_classification_run", **config))
        assert [c.passed for c in result.get_asset_check_evaluations()] == [True]
    for config in ({"precision": "bf16"}, {"quantization": "dynamic_int8"}):
        result = materialize([language_model_weights, language_modeling_run], bench_resources,
                             partition_key="all-minilm-l6-v2", run_config=run_config("language_modeling_run", **config))
        assert [c.passed for c in result.get_asset_check_evaluations()] == [True]

    runs = query(
        "SELECT model, batching ->> 'precision', batching ->> 'memory_format', batching ->> 'quantization', "
        "comparison_key, status FROM runs ORDER BY started_at"
    )
    assert [row[:4] for row in runs] == [
        ("efficientnet_lite0", "fp32", "contiguous", "none"),
        ("efficientnet_lite0", "bf16", "contiguous", "none"),
        ("efficientnet_lite0", "fp32", "channels_last", "none"),
        ("all-minilm-l6-v2", "bf16", "contiguous", "none"),
        ("all-minilm-l6-v2", "fp32", "contiguous", "dynamic_int8"),
    ]
    assert len({row[4] for row in runs}) == 5 and {row[5] for row in runs} == {"finished"}
    # Item by item, against fp32 (the real weights): channels_last is the same fp32 arithmetic in another order,
    # so its scores match to rounding; bf16 rounds every product to 8 bits, so its scores differ (how far, and
    # which near-ties flip, depends on the instruction set: the configurations script measures agreement).
    fp32, bf16, channels_last = [run_id for (run_id,) in query(
        "SELECT run_id FROM runs WHERE model = 'efficientnet_lite0' ORDER BY started_at")]
    scores = """
        SELECT count(*), max(abs(c.score - f.score))
        FROM predictions c JOIN predictions f USING (line) WHERE c.run_id = ? AND f.run_id = ?"""
    (items, largest_difference), = query(scores, [channels_last, fp32])
    assert items == 23 and largest_difference < 1e-3
    (items, largest_difference), = query(scores, [bf16, fp32])
    assert items == 23 and largest_difference > 0


@pytest.mark.slow
def test_onnxruntime_and_openvino_run_the_converted_model_and_predict_what_pytorch_predicts(bench_resources, query, no_network):
    materialize([openimage_sample], bench_resources)
    for config in ({}, {"backend": "onnxruntime"}, {"backend": "openvino"}, {"backend": "openvino", "quantization": "static_int8"}):
        result = materialize([image_model_weights, image_classification_run], bench_resources, partition_key="efficientnet_lite0",
                             run_config=run_config("image_classification_run", **config))
        assert [c.passed for c in result.get_asset_check_evaluations()] == [True]

    runs = query("SELECT run_id, batching ->> 'backend', comparison_key, status FROM runs ORDER BY started_at")
    assert [row[1] for row in runs] == ["pytorch", "onnxruntime", "openvino", "openvino"] and len({row[2] for row in runs}) == 4
    assert {row[3] for row in runs} == {"finished"}
    pytorch, int8 = runs[0][0], runs[3][0]
    # OpenVINO's int8 predicts every photo, with other scores than fp32's (int8 activations); whether it predicts
    # well enough is the accuracy guard's verdict, on the confident items (tested in test_trust).
    (items, largest_difference), = query("""
        SELECT count(*), max(abs(r.score - p.score))
        FROM predictions r JOIN predictions p USING (line) WHERE r.run_id = ? AND p.run_id = ?""", [int8, pytorch])
    assert items == 23 and largest_difference > 1e-3
    for (run_id, _, _, _), namespace in zip(runs[1:3], ("BeamML_Onnx", "BeamML_OpenVINO")):
        # Each runtime's handler reports under its own namespace, its model loading (the conversion) included.
        beam_metrics = dict(query("SELECT metric, value FROM metrics WHERE run_id = ? AND namespace = ?", [run_id, namespace]))
        assert beam_metrics["num_inferences"] == 23 and beam_metrics["mean_load_model_latency_milli_secs"] > 0
        # Item by item against PyTorch (the real weights, the labelled photos): the same fp32 graph, so the same
        # top-1 class and the same scores but for rounding.
        (items, same_class, largest_difference), = query("""
            SELECT count(*), count(*) FILTER (WHERE r.predicted_index = p.predicted_index), max(abs(r.score - p.score))
            FROM predictions r JOIN predictions p USING (line) WHERE r.run_id = ? AND p.run_id = ?""", [run_id, pytorch])
        assert items == same_class == 23 and largest_difference < 1e-3


@pytest.mark.slow
def test_a_compiled_model_compiles_in_the_model_loading_not_in_its_batches(bench_resources, query, no_network):
    materialize([sentence_corpus], bench_resources)
    graphs_before = dynamo_counters["stats"]["unique_graphs"]
    # Batches of 2 to 8 sentences of varying lengths (Beam's length-aware batching): what the compiled graphs serve.
    result = materialize([language_model_weights, language_modeling_run], bench_resources, partition_key="all-minilm-l6-v2",
                         run_config=run_config("language_modeling_run", compile="torch.compile", batching_mode="length_bucketed",
                                               min_batch_size=2, max_batch_size=8))
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True]
    # Two graphs, both compiled by the warm-up in Beam's model loading: one for a batch of one item (PyTorch
    # specialises a size of 1), one for batches of 2 to 8 (BERT has no layer whose kernel depends on the batch
    # size); none for any batch's size or sentence length.
    assert dynamo_counters["stats"]["unique_graphs"] - graphs_before == 2
    (run_id, compile_setting, status), = query("SELECT run_id, batching ->> 'compile', status FROM runs")
    assert (compile_setting, status) == ("torch.compile", "finished")
    batch_sizes = {size for (size,) in query("SELECT batch_size FROM batches WHERE run_id = ?", [run_id])}
    assert len(batch_sizes) > 1


# torch.onnx's export takes some 8 s even for a tiny BERT: the ONNX Runtime cases run with the slow tests.
@pytest.mark.parametrize("backend", [pytest.param("onnxruntime", marks=pytest.mark.slow), "openvino"])
@pytest.mark.parametrize(
    "model, tokenize, inference, inputs",
    [
        # Masked words: a batch padded to its longest sentence, the attention mask hiding the padding.
        (TINY_BERT, language_modeling.tokenize_masked, language_modeling.MaskedWordInference(103, 0),
         sentence_inputs(language_modeling.MODEL_INPUTS, language_modeling.TYPICAL_TOKENS)),
        # Sentiment: every sentence padded to 128 tokens.
        (TINY_DISTILBERT, sentiment.tokenize, sentiment.SequenceClassificationInference(),
         sentence_inputs(sentiment.MODEL_INPUTS, sentiment.MAX_LENGTH)),
    ],
    ids=["masked_word", "sentiment"],
)
def test_a_runtime_scores_bert_models_as_pytorch_does_at_any_batch_size_and_length(
    tmp_path, backend, model, tokenize, inference, inputs
):
    torch.manual_seed(0)
    pytorch_model = model.build().eval()
    weights = tmp_path / "weights.pt"
    torch.save(pytorch_model.state_dict(), weights)
    handler = RUNTIME_HANDLERS[backend](spec=model, state_dict_path=str(weights), inputs=inputs, inference_fn=inference)
    runtime_model = handler.load_model()
    texts = ["The cat sat on the mat .", "A much longer sentence about the market and the fresh bread they sell .",
             "Rain again ."]
    tokenizer = load_bert_tokenizer()
    batch = [tokenize(tokenizer, text) for text in texts]
    # Batches of other sizes and lengths than the conversion's example: both dimensions are dynamic.
    for items in (batch, batch[:1]):
        expected = torch.stack([result.inference for result in inference(items, pytorch_model, "cpu")])
        scores = torch.stack([result.inference for result in handler.run_inference(items, runtime_model)])
        # Random weights: scores, not argmax (near-ties may flip), within fp32 rounding.
        torch.testing.assert_close(scores, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("config", [
    pytest.param({"backend": "onnxruntime"}, marks=pytest.mark.slow, id="onnxruntime"),
    pytest.param({"backend": "openvino"}, id="openvino"),
    pytest.param({"backend": "openvino", "quantization": "static_int8"}, id="openvino-int8"),
])
def test_a_runtime_ends_every_line_of_the_masked_word_pipeline_as_pytorch_does(tmp_path, config):
    torch.manual_seed(0)
    weights = tmp_path / "tiny-bert.pt"
    torch.save(TINY_BERT.build().state_dict(), weights)
    cases = sentence_cases()  # good lines and lines that fail at read or preprocess
    corpus = tmp_path / "sentences.txt"
    write_lines(corpus, [line for _, line, _, _ in cases])
    outcomes, scores = {}, {}
    for name, run_config in (("pytorch", {}), ("runtime", config)):
        run_dir = tmp_path / name

        def build(pipeline):
            LANGUAGE_MODELING_BENCHMARK.build_pipeline(pipeline, LANGUAGE_MODELING_BENCHMARK.request(
                input_file=corpus, model=TINY_BERT, state_dict_path=weights, run_dir=run_dir,
                batching_mode=language_modeling.LENGTH_BUCKETED, min_batch_size=2, max_batch_size=8, **run_config,
            ))

        run_pipeline(build, RunnerSettings(), ProgressMonitor(run_dir / "progress", len(cases), lambda _: None))
        predictions = read_output_rows(run_dir, "predictions")
        rows = predictions + read_output_rows(run_dir, "failures")
        outcomes[name] = {row["line"]: row.get("stage", PREDICTED) for row in rows}
        assert len(rows) == len(outcomes[name])
        scores[name] = dict(sorted((row["line"], row["score"]) for row in predictions))
    assert outcomes["runtime"] == outcomes["pytorch"] == {
        line: stage for line, (_, _, stage, _) in enumerate(cases, start=1)
    }
    assert list(scores["runtime"]) == list(scores["pytorch"])
    if "quantization" not in config:
        # Random weights: the top word's probability, not the word (near-ties may flip); int8 changes them.
        torch.testing.assert_close(torch.tensor(list(scores["runtime"].values())),
                                   torch.tensor(list(scores["pytorch"].values())), rtol=1e-4, atol=1e-5)


def test_int8_is_calibrated_on_the_runs_own_first_usable_items_as_the_pipeline_prepares_them(tmp_path):
    cases = sentence_cases()
    corpus = tmp_path / "sentences.txt"
    write_lines(corpus, [line for _, line, _, _ in reversed(cases)])  # the failing lines first
    inputs = sentence_inputs(language_modeling.MODEL_INPUTS, language_modeling.TYPICAL_TOKENS)
    prepare = PrepareItems(language_modeling.tokenize_masked, load_bert_tokenizer)
    sample = CalibrationSample(str(corpus), prepare, items=3).model_inputs(inputs)

    tokenizer = load_bert_tokenizer()
    usable = [line.decode() for _, line, stage, _ in reversed(cases) if stage == PREDICTED][:3]
    expected = [language_modeling.tokenize_masked(tokenizer, text) for text in usable]
    assert len(sample) == 3
    for arrays, tensors in zip(sample, expected):
        assert [array.shape for array in arrays] == [(1, len(tensors["input_ids"]))] * 3
        for array, name in zip(arrays, inputs.names):
            assert array.tolist() == [tensors[name].tolist()]

    torch.manual_seed(0)
    converted = import_openvino().convert_model(
        PositionalModel(TINY_BERT.build().eval(), inputs), example_input=tuple(inputs.examples.values()))
    quantized = calibrated_int8(converted, sample, transformer=True)
    # NNCF marks each quantized input with a FakeQuantize node, which OpenVINO's CPU plugin runs as int8.
    assert not any(op.get_type_name() == "FakeQuantize" for op in converted.get_ops())
    assert any(op.get_type_name() == "FakeQuantize" for op in quantized.get_ops())

    unusable = tmp_path / "unusable.txt"
    write_lines(unusable, [line for _, line, stage, _ in cases if stage != PREDICTED])
    with pytest.raises(ValueError, match="no line of .* is a usable item: nothing to calibrate int8 on"):
        CalibrationSample(str(unusable), prepare).model_inputs(inputs)


def test_openvino_is_imported_with_its_telemetry_declined():
    import openvino_telemetry
    from openvino_telemetry.utils.opt_in_checker import OptInChecker

    import_openvino()
    # OpenVINO sends usage events at import and at conversion unless its consent file says no.
    assert open(OptInChecker().consent_file()).read() == "0"
    assert openvino_telemetry.Telemetry().consent is False
