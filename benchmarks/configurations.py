"""How fast each image model runs in each configuration, against a forward-only loop, on this machine; and the
language models on each backend, forward only.

    .venv/bin/python benchmarks/configurations.py [--images 160] [--models efficientnet_lite0 resnet101]
        [--configurations fp32 onnxruntime openvino] [--language-models bert-base-uncased] [--sentences 64]

For each image model and configuration (fp32, bf16 autocast, channels_last, both, torch.compile, ONNX Runtime,
OpenVINO, OpenVINO's calibrated int8; --configurations picks some by label), in this one process with the same images, weights and threads: a
forward-only loop over the same preprocessed batches, on the model as the platform's handler loads it (configured,
compiled, or converted for ONNX Runtime or OpenVINO), timed before and after the pipeline (the mean of the two),
and the platform's Beam pipeline (direct runner, fixed batches of the same size). Prints items/s of each, the
pipeline's inference stage over forward-only (target >= 0.9), end-to-end items/s, and each configuration's
end-to-end speed-up over fp32, with top-1 agreement with fp32 item by item. Loading the model (compiling it,
converting it) is outside forward-only and the inference stage, inside end-to-end: over few images it dominates
end-to-end. torch.compile reuses Inductor's on-disk cache, so a second compile of the same model loads faster than
the first.

For each language model (masked word, seeded random weights) and configuration (PyTorch fp32 and dynamic int8, ONNX
Runtime, OpenVINO fp32 and calibrated int8):
the masked-word handler's inference over the same tokenized sentences of the sentence corpus, in batches of BATCH
sentences of similar length (as length_bucketed batching forms them), timed twice (the mean), on the model as the
handler loads it. Prints sentences/s, the speed-up over PyTorch fp32, the load time (the conversion, the
quantization) and the largest difference of the masked word's logits from PyTorch fp32's. The int8 configurations are
calibrated (OpenVINO's) on the same sentences or images they are timed on, as a run calibrates on its own first items.
"""

import argparse
import dataclasses
import platform
import statistics
import time
from pathlib import Path

import torch

from bench_assets.benchmarks.image_classification import BENCHMARK as IMAGE_CLASSIFICATION_BENCHMARK
from bench_assets.benchmarks.language_modeling import pipeline as language_modeling
from bench_assets.benchmarks.language_modeling.models import LANGUAGE_MODELS
from bench_assets.datasets.bert_vocabulary import load_bert_tokenizer
from bench_assets.datasets.sentences import build_sentence_corpus
from bench_assets.vision import image_pipeline
from bench_assets.datasets.images import build_image_sample
from bench_assets.benchmarks.image_classification.models import IMAGE_MODELS
from bench_assets.machine.fingerprint import cpu_model
from bench_assets.run.configuration import ModelConfiguration, configuration_label
from bench_assets.pipeline.model_handlers import CalibrationSample, precision_autocast
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.prepare_items import PrepareItems
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.settings import default_data_dir
from bench_assets.run.weights import prepare_weights

WORK_DIR = Path(default_data_dir()) / "configurations"
BATCH = 16
CONFIGURATIONS = (
    ModelConfiguration(),
    ModelConfiguration(precision="bf16"),
    ModelConfiguration(memory_format="channels_last"),
    ModelConfiguration(precision="bf16", memory_format="channels_last"),
    ModelConfiguration(compile="torch.compile"),
    ModelConfiguration(backend="onnxruntime"),
    ModelConfiguration(backend="openvino"),
    ModelConfiguration(backend="openvino", quantization="static_int8"),
)
LANGUAGE_CONFIGURATIONS = (
    ModelConfiguration(),
    ModelConfiguration(quantization="dynamic_int8"),
    ModelConfiguration(backend="onnxruntime"),
    ModelConfiguration(backend="openvino"),
    ModelConfiguration(backend="openvino", quantization="static_int8"),
)


def label(configuration: ModelConfiguration) -> str:
    return configuration_label(dataclasses.asdict(configuration))


def forward_only(model, precision: str, batches: list[torch.Tensor]) -> float:
    """Items/s of model(batch) over the preprocessed batches (a warm model: see main)."""
    with torch.no_grad(), precision_autocast("cpu", precision):
        start = time.perf_counter()
        for batch in batches:
            model(batch)
        seconds = time.perf_counter() - start
    return sum(len(b) for b in batches) / seconds


def pipeline_run(spec, weights: Path, image_list: Path, items: int, run_dir: Path) -> tuple[float, float, dict]:
    """(inference-stage items/s, end-to-end items/s, {line: class}) of the Beam pipeline at fixed batches."""
    def build(pipeline):
        IMAGE_CLASSIFICATION_BENCHMARK.build_pipeline(pipeline, IMAGE_CLASSIFICATION_BENCHMARK.request(
            input_file=image_list, model=spec, state_dict_path=weights, run_dir=run_dir, min_batch_size=BATCH,
            max_batch_size=BATCH, **dataclasses.asdict(spec.configuration),
        ))

    start = time.perf_counter()
    run_pipeline(build, RunnerSettings(), ProgressMonitor(run_dir / "progress", items, lambda _: None, every_s=3600))
    wall = time.perf_counter() - start
    batches = read_output_rows(run_dir, "batches")
    inference = sum(b["batch_size"] for b in batches) / (sum(b["latency_us"] for b in batches) / 1e6)
    predictions = {row["line"]: row["predicted_index"] for row in read_output_rows(run_dir, "predictions")}
    return inference, len(predictions) / wall, predictions


def language_model_configurations(model: str, sentences: int) -> None:
    """Prints the masked-word inference's sentences/s in each configuration (see the module's docstring)."""
    base = LANGUAGE_MODELS[model]
    weights = WORK_DIR / f"{model}.pt"
    if not weights.exists():
        prepare_weights(base, weights, configured=None, seed=7)
    tokenizer = load_bert_tokenizer()
    texts = build_sentence_corpus(sentences, seed=7)
    corpus = WORK_DIR / f"sentences-{sentences}.txt"
    corpus.write_text("".join(f"{text}\n" for text in texts))
    calibration = CalibrationSample(str(corpus), PrepareItems(language_modeling.tokenize_masked, load_bert_tokenizer))
    examples = sorted(
        (language_modeling.tokenize_masked(tokenizer, text) for text in texts),
        key=lambda example: len(example["input_ids"]),
    )
    batches = [list(enumerate(examples[i:i + BATCH], start=i)) for i in range(0, len(examples), BATCH)]
    pytorch_rate, pytorch_logits = None, None
    for configuration in LANGUAGE_CONFIGURATIONS:
        spec = dataclasses.replace(base, configuration=configuration)
        handler = language_modeling.model_handler(
            spec, str(weights), language_modeling.LENGTH_BUCKETED, BATCH, BATCH, "CPU",
            language_modeling.forward_example_sentences, calibration,
        )
        start = time.perf_counter()
        model_only = handler.load_model()
        load_seconds = time.perf_counter() - start
        handler.run_inference(batches[0], model_only)  # warm-up
        rates, logits = [], []
        for _ in range(2):
            start = time.perf_counter()
            results = [result for batch in batches for result in handler.run_inference(batch, model_only)]
            rates.append(len(examples) / (time.perf_counter() - start))
        logits = torch.stack([result.inference[0] for _, result in results])  # (logits, batch record)
        rate = statistics.mean(rates)
        if pytorch_rate is None:
            pytorch_rate, pytorch_logits = rate, logits
        print(f"{model:<20}{label(configuration):<26}{rate:>15.1f}{rate / pytorch_rate:>10.2f}{load_seconds:>10.1f}"
              f"{(logits - pytorch_logits).abs().max().item():>18.2e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--models", nargs="*", default=["efficientnet_lite0", "resnet50"])
    parser.add_argument("--configurations", nargs="*", default=[label(c) for c in CONFIGURATIONS],
                        help="the image configurations to run, by label (fp32 first: the others are compared to it)")
    parser.add_argument("--language-models", nargs="*", default=[])
    parser.add_argument("--sentences", type=int, default=64)
    args = parser.parse_args()
    configurations = [c for c in CONFIGURATIONS if label(c) in args.configurations]
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"python {platform.python_version()}; {args.images} images, batches of {BATCH}")
    if args.models:
        sample = build_image_sample(WORK_DIR / f"images-{args.images}", args.images, seed=7)
        print(f"{'model':<20}{'configuration':<26}{'forward-only/s':>15}{'pipeline inference/s':>22}{'ratio':>7}"
              f"{'end-to-end/s':>14}{'speed-up':>10}{'top-1 = fp32':>14}")
    transform_cache = {}
    for model in args.models:
        base = IMAGE_MODELS[model]
        weights = WORK_DIR / f"{model}.pt"
        if not weights.exists():
            prepare_weights(base, weights, configured=None, seed=7)
        transform = transform_cache.setdefault(model, image_pipeline.image_transform(base))
        tensors = [transform(image_pipeline.read_image(str(p))) for p in sample.paths]
        batches = [torch.stack(tensors[i:i + BATCH]) for i in range(0, len(tensors), BATCH)]
        fp32_end_to_end, fp32_predictions = None, None
        for configuration in configurations:
            spec = dataclasses.replace(base, configuration=configuration)
            # The model as the pipeline's own handler loads it (configured, compiled or converted), warmed up by one
            # batch; timed before and after the pipeline, so that drift in the machine's speed during the pipeline
            # shows in both figures of the ratio.
            model_only = image_pipeline.model_handler(
                spec, str(weights), BATCH, BATCH, "CPU", example_forward=IMAGE_CLASSIFICATION_BENCHMARK.example_forward,
                calibration=CalibrationSample(str(sample.list_path), image_pipeline.DecodeImages(transform)),
            ).load_model()
            forward_only(model_only, configuration.precision, batches[:1])
            forward_before = forward_only(model_only, configuration.precision, batches)
            run_dir = WORK_DIR / "runs" / model / label(configuration).replace(" ", "-")
            if run_dir.exists():
                for path in run_dir.rglob("*"):
                    path.unlink() if path.is_file() else None
            inference, end_to_end, predictions = pipeline_run(spec, weights, sample.list_path, args.images, run_dir)
            forward = statistics.mean((forward_before, forward_only(model_only, configuration.precision, batches)))
            if fp32_end_to_end is None:
                fp32_end_to_end, fp32_predictions = end_to_end, predictions
            agreement = statistics.mean(predictions[line] == fp32_predictions[line] for line in fp32_predictions)
            print(f"{model:<20}{label(configuration):<26}{forward:>15.1f}{inference:>22.1f}{inference / forward:>7.2f}"
                  f"{end_to_end:>14.1f}{end_to_end / fp32_end_to_end:>10.2f}{agreement:>14.1%}", flush=True)
    if args.language_models:
        print(f"\n{args.sentences} sentences of the corpus, batches of {BATCH} of similar length")
        print(f"{'model':<20}{'configuration':<26}{'sentences/s':>15}{'speed-up':>10}{'load s':>10}{'max |logit diff|':>18}")
    for model in args.language_models:
        language_model_configurations(model, args.sentences)


if __name__ == "__main__":
    main()
