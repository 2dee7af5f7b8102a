-- One row per finished run: what it ran, where, and its figures. Latency percentiles and throughput come from
-- the per-batch records, so they exist on every runner; the seed's three headline means come from Beam's
-- metrics and are null for runners that return none.
with runs as (
    select * from {{ ref('stg_runs') }}
    where status = 'finished'
),

batch_figures as (
    select
        run_id,
        count(*) as batches,
        sum(batch_size) as batched_items,
        sum(latency_ms) / 1000 as inference_seconds,
        quantile_cont(latency_ms, 0.50) as batch_latency_p50_ms,
        quantile_cont(latency_ms, 0.90) as batch_latency_p90_ms,
        quantile_cont(latency_ms, 0.99) as batch_latency_p99_ms,
        max(latency_ms) as batch_latency_max_ms
    from {{ ref('stg_batches') }}
    group by run_id
),

-- An item's latency is its share of its batch's latency; each item counts once, so a batch of 100 weighs
-- a hundred times a batch of 1.
item_figures as (
    select
        run_id,
        quantile_cont(item_latency_ms, 0.50) as item_latency_p50_ms,
        quantile_cont(item_latency_ms, 0.90) as item_latency_p90_ms,
        quantile_cont(item_latency_ms, 0.99) as item_latency_p99_ms
    from (
        select run_id, latency_ms / batch_size as item_latency_ms, unnest(range(batch_size)) as item_in_batch
        from {{ ref('stg_batches') }}
    )
    group by run_id
),

run_metrics as (
    select
        run_id,
        max(value) filter (where metric = 'mean_inference_request_batch_size') as mean_batch_size,
        max(value) filter (where metric = 'mean_inference_batch_latency_micro_secs') / 1000 as mean_batch_latency_ms,
        max(value) filter (where metric = 'mean_load_model_latency_milli_secs') as load_model_latency_ms,
        max(value) filter (where namespace = 'harness' and metric = 'pipeline_wall_seconds') as wall_seconds,
        max(value) filter (where namespace = 'harness' and metric = 'peak_rss_bytes') / 1048576 as peak_rss_mib
    from {{ ref('stg_metrics') }}
    group by run_id
),

predicted as (
    select run_id, count(*) as predictions
    from {{ ref('stg_predictions') }}
    group by run_id
),

failed as (
    select run_id, count(*) as failures
    from {{ ref('stg_failures') }}
    group by run_id
),

summary as (
    select
        runs.run_id,
        runs.benchmark,
        runs.model,
        runs.profile,
        runs.runner,
        runs.device,
        runs.min_batch_size,
        runs.max_batch_size,
        runs.dataset_size,
        runs.weights_source,
        runs.started_at,
        runs.ended_at,
        coalesce(predicted.predictions, 0) as predictions,
        coalesce(failed.failures, 0) as failures,
        batch_figures.batches,
        run_metrics.mean_batch_size,
        run_metrics.mean_batch_latency_ms,
        run_metrics.load_model_latency_ms,
        batch_figures.batch_latency_p50_ms,
        batch_figures.batch_latency_p90_ms,
        batch_figures.batch_latency_p99_ms,
        batch_figures.batch_latency_max_ms,
        item_figures.item_latency_p50_ms,
        item_figures.item_latency_p90_ms,
        item_figures.item_latency_p99_ms,
        1000 * batch_figures.inference_seconds / batch_figures.batched_items as item_latency_mean_ms,
        batch_figures.batched_items / nullif(batch_figures.inference_seconds, 0) as inference_items_per_second,
        coalesce(predicted.predictions, 0) / nullif(run_metrics.wall_seconds, 0) as end_to_end_items_per_second,
        run_metrics.wall_seconds,
        run_metrics.peak_rss_mib,
        runs.fingerprint_id,
        runs.cpu_model,
        runs.usable_cores,
        runs.torch_threads,
        runs.gpu,
        runs.python_version,
        runs.torch_version,
        runs.beam_version,
        runs.dagster_version,
        -- Runs compare when they ran the same work the same way on the same fingerprint.
        md5(concat_ws('|',
            runs.benchmark, runs.model, runs.profile, runs.dataset_size,
            runs.device, runs.min_batch_size, runs.max_batch_size, runs.fingerprint_id
        )) as comparison_key
    from runs
    left join batch_figures using (run_id)
    left join item_figures using (run_id)
    left join run_metrics using (run_id)
    left join predicted using (run_id)
    left join failed using (run_id)
)

select
    *,
    row_number() over (partition by comparison_key order by started_at, run_id) as run_number,
    count(*) over (partition by comparison_key) as comparable_runs
from summary
