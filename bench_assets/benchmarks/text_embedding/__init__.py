"""Text embedding (Beam's `mltransform_text_embedding_benchmark`): MLTransform with SentenceTransformerEmbeddings
and the real all-MiniLM-L6-v2 turns each sentence into a 384-d vector; the quality figure is the share of
altered copies whose nearest neighbour is their original (dbt mart embedding_retrieval)."""

from bench_assets.benchmarks.text_embedding.models import TEXT_EMBEDDING, TEXT_EMBEDDING_MODELS
from bench_assets.benchmarks.text_embedding.pipeline import TextEmbeddingRunConfig, build_run, forward_example_sentences
from bench_assets.datasets.retrieval_sentences import RETRIEVAL_SENTENCES
from bench_assets.pipeline.embeddings import EMBEDDING_METRICS_NAMESPACE
from bench_assets.run.configuration import COMPILERS
from bench_assets.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    name=TEXT_EMBEDDING,
    description=(
        "Sentence embeddings with Beam's MLTransform and SentenceTransformerEmbeddings (all-MiniLM-L6-v2, real "
        "weights), as Beam's mltransform_text_embedding example; quality: altered copies' nearest neighbours."
    ),
    dataset=RETRIEVAL_SENTENCES,
    models=TEXT_EMBEDDING_MODELS,
    build_pipeline=build_run,
    run_config=TextEmbeddingRunConfig,
    example_forward=forward_example_sentences,
    beam_metrics_namespace=EMBEDDING_METRICS_NAMESPACE,
    # The encoder is PyTorch: autocast, int8 Linear layers and torch.compile apply; its inputs are a dict of
    # tensors built inside SentenceTransformer.encode, so it is not exported to ONNX here.
    configurations={"precision": ("fp32", "bf16"), "quantization": ("none", "dynamic_int8"), "compile": COMPILERS},
)
