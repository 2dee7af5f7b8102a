"""Language modeling (Beam's `pytorch_language_modeling` benchmark): BERT predicts the masked last word of each
sentence of a generated corpus."""

from bench_assets.datasets.sentences import SENTENCE_CORPUS
from bench_assets.benchmarks.language_modeling.models import LANGUAGE_MODELING, LANGUAGE_MODELS, build_masked_lm_from_folder
from bench_assets.benchmarks.language_modeling.pipeline import LanguageModelingRunConfig, build_run, forward_example_sentences
from bench_assets.run.configuration import BACKENDS, COMPILERS, PRECISIONS, QUANTIZATIONS
from bench_assets.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    name=LANGUAGE_MODELING,
    description="Masked last-word prediction over the sentence corpus with Beam RunInference and BertForMaskedLM.",
    dataset=SENTENCE_CORPUS,
    models=LANGUAGE_MODELS,
    build_pipeline=build_run,
    run_config=LanguageModelingRunConfig,
    sweep_settings={"batching_mode": "length_bucketed"},  # Beam's example mode infers one sentence at a time
    weights_asset="language_model_weights",
    example_forward=forward_example_sentences,
    user_model_builders={"huggingface": build_masked_lm_from_folder},
    # Linear layers: int8 pays off. The inputs (token ids, attention mask) export with their batch size and sentence
    # length dynamic (backends onnxruntime and openvino).
    configurations={"precision": PRECISIONS, "quantization": QUANTIZATIONS, "compile": COMPILERS, "backend": BACKENDS},
)
