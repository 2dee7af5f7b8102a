"""The benchmark inputs: the sampled image set and the sentence corpus."""

from dataclasses import asdict

import dagster as dg

from bench_assets.corpus import build_sentence_corpus, corpus_stats, load_bert_tokenizer, write_corpus
from bench_assets.images import build_image_sample
from bench_assets.resources import BenchmarkSettings, existing_path

IMAGE_LIST = "images.txt"
CORPUS_FILE = "sentences.txt"


@dg.asset(group_name="datasets", kinds={"python"})
def openimage_sample(context: dg.AssetExecutionContext, settings: BenchmarkSettings) -> dg.MaterializeResult:
    """Images for the classification benchmark, and the list file (one path per line) its pipeline reads.

    Beam's benchmark samples 50,000 OpenImages photos. Offline, we derive a seeded set of OpenImages-like JPEGs
    from real photos that scikit-image ships; a configured `openimages_source` is sampled instead. Its images must
    lie inside the image roots (the data folder, the source folder or the list file's folder).
    """
    count = settings.selected_profile().images
    source = existing_path("openimages_source", settings.openimages_source)
    context.log.info(f"building {count:,} images ({settings.profile} profile) from {source or 'shipped photos'}")
    sample = build_image_sample(
        settings.dataset_dir("openimage_sample"), count, settings.seed, source, allowed_roots=settings.image_roots()
    )
    return dg.MaterializeResult(
        metadata={
            "count": len(sample.paths),
            "total_bytes": sample.total_bytes,
            "mean_bytes": sample.total_bytes / len(sample.paths),
            "width_min": sample.width_min,
            "width_median": sample.width_median,
            "width_max": sample.width_max,
            "height_min": sample.height_min,
            "height_median": sample.height_median,
            "height_max": sample.height_max,
            "source": sample.source,
            "image_list": dg.MetadataValue.path(str(sample.list_path)),
        }
    )


@dg.asset(group_name="datasets", kinds={"python"})
def sentence_corpus(context: dg.AssetExecutionContext, settings: BenchmarkSettings) -> dg.MaterializeResult:
    """Unique English sentences, one per line, each ending in "<word> ." so its last word can be masked.

    Like the seed benchmark's generated sentences: real sentences from text that installed packages ship,
    split and recombined, plus a seeded grammar of our own; deterministic for a given seed.
    """
    count = settings.selected_profile().sentences
    sentences = build_sentence_corpus(count, settings.seed)
    path = settings.dataset_dir("sentence_corpus") / CORPUS_FILE
    write_corpus(sentences, path)
    stats = corpus_stats(sentences, load_bert_tokenizer())
    context.log.info(f"wrote {stats.count:,} sentences to {path}; [UNK] share {stats.unk_share:.4%}")
    return dg.MaterializeResult(metadata={**asdict(stats), "path": dg.MetadataValue.path(str(path))})
