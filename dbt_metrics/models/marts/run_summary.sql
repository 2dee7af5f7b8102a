-- A view, so that a run asset reads its figures the moment its rows land (bench_assets/store/marts.py).
-- Its comment: the digest of the definitions it was made from (bench_assets/store/marts.py).
{{ config(materialized='view', post_hook="COMMENT ON VIEW {{ this }} IS '{{ var(\"definitions_digest\", \"\") }}'") }}
-- One row per finished run: what it ran, where, and its figures. Latency percentiles and throughput come from
-- the per-batch records, so they exist on every runner; the seed's three headline means come from Beam's
-- metrics and are null for runners that return none. A run with no batch at all (every item failed before
-- inference) has null latencies and 0 predictions. A run that lost items (is_complete false) is kept, with
-- everything it wrote, but takes no place in a series: no run_number, and no row in model_trend.
with runs as (
    select * from {{ ref('stg_runs') }}
    where status = 'finished'
),

-- The time inference was busy: the union of the batches' spans, so that batches running at once on several
-- workers count their shared time once (on one process, batches never overlap and this is their summed latency).
-- Over all batches, and over the steady-state ones: those that started after the warm-up window (the first
-- `warmup_seconds` of inference; see dbt_project.yml).
batch_spans as (
    -- Seconds from the run's first batch, from whole microseconds: small numbers keep a span exactly its latency.
    select
        *,
        start_s + latency_ms / 1000 as end_s,
        start_s >= {{ var('warmup_seconds') }} as is_steady
    from (
        select
            *,
            (epoch_us(started_at) - min(epoch_us(started_at)) over (partition by run_id)) / 1e6 as start_s
        from {{ ref('stg_batches') }}
    )
),

span_sets as (
    select run_id, 'all' as span_set, start_s, end_s from batch_spans
    union all
    select run_id, 'steady' as span_set, start_s, end_s from batch_spans where is_steady
),

busy_by_set as (
    select run_id, span_set, sum(island_end - island_start) as busy_seconds
    from (
        select run_id, span_set, island, min(start_s) as island_start, max(end_s) as island_end
        from (
            select
                run_id, span_set, start_s, end_s,
                count(*) filter (where start_s > coalesce(latest_end, start_s - 1)) over (
                    partition by run_id, span_set order by start_s, end_s rows unbounded preceding
                ) as island
            from (
                select *, max(end_s) over (
                    partition by run_id, span_set order by start_s, end_s
                    rows between unbounded preceding and 1 preceding
                ) as latest_end
                from span_sets
            )
        )
        group by run_id, span_set, island
    )
    group by run_id, span_set
),

busy as (
    select
        run_id,
        sum(busy_seconds) filter (where span_set = 'all') as inference_seconds,
        sum(busy_seconds) filter (where span_set = 'steady') as steady_inference_seconds
    from busy_by_set
    group by run_id
),

batch_figures as (
    select
        run_id,
        count(*) as batches,
        sum(batch_size) as batched_items,
        any_value(busy.inference_seconds) as inference_seconds,
        sum(latency_ms) as summed_latency_ms,
        quantile_cont(latency_ms, 0.50) as batch_latency_p50_ms,
        quantile_cont(latency_ms, 0.90) as batch_latency_p90_ms,
        quantile_cont(latency_ms, 0.99) as batch_latency_p99_ms,
        max(latency_ms) as batch_latency_max_ms
    from {{ ref('stg_batches') }}
    join busy using (run_id)
    group by run_id
),

-- Steady state: the batches that started after the warm-up window (is_steady). A run shorter than the window has
-- no steady-state figures.
steady_figures as (
    select
        run_id,
        min(started_at) as warmup_ended_at,
        count(*) as steady_batches,
        sum(batch_size) / nullif(any_value(busy.steady_inference_seconds), 0) as steady_inference_items_per_second,
        quantile_cont(latency_ms, 0.50) as steady_batch_latency_p50_ms,
        quantile_cont(latency_ms, 0.99) as steady_batch_latency_p99_ms
    from batch_spans
    join busy using (run_id)
    where is_steady
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
        max(value) filter (where namespace = 'harness' and metric = 'peak_rss_bytes') / 1048576 as peak_rss_mib,
        max(value) filter (where namespace = 'harness' and metric = 'estimated_cost_usd') as estimated_cost_usd,
        max(value) filter (where namespace = 'harness' and metric = 'flops_per_item') as flops_per_item,
        max(value) filter (where namespace = 'harness' and metric = 'peak_flops_per_second') as peak_flops_per_second,
        max(value) filter (where namespace = 'harness' and metric = 'theoretical_peak_flops_per_second')
            as theoretical_peak_flops_per_second
    from {{ ref('stg_metrics') }}
    group by run_id
),

-- Accuracy over the predictions whose right answer is known: the masked word, or the accepted ImageNet
-- classes of the photo an image was made from ('|'-separated). Top-5 where a prediction keeps its top five.
predicted as (
    select
        run_id,
        count(*) as predictions,
        count(expected_label) as labelled_predictions,
        avg(case when expected_label is not null
            then list_contains(string_split(lower(expected_label), '|'), lower(predicted_label))::int end)
            as top1_accuracy,
        avg(case when expected_label is not null and json_exists(detail, '$.top5')
            then list_has_any(string_split(lower(expected_label), '|'),
                              list_transform(json_extract_string(detail, '$.top5[*].label'), lambda x: lower(x)))::int end)
            as top5_accuracy
    from {{ ref('stg_predictions') }}
    group by run_id
),

failed as (
    select
        run_id,
        count(*) as failures,
        count(*) filter (where stage = 'read') as failures_read,
        count(*) filter (where stage = 'preprocess') as failures_preprocess,
        count(*) filter (where stage = 'inference') as failures_inference
    from {{ ref('stg_failures') }}
    group by run_id
),

-- Every input line must be exactly one prediction or one failure.
accounted as (
    select run_id, count(distinct line) as lines_accounted
    from (
        select run_id, line from {{ ref('stg_predictions') }}
        union all
        select run_id, line from {{ ref('stg_failures') }}
    )
    group by run_id
),

summary as (
    select
        runs.run_id,
        runs.benchmark,
        runs.model,
        runs.profile,
        runs.runner,
        {{ run_setting_columns('runs') }},
        runs.batching_mode,
        runs.is_reference_configuration,
        runs.is_beam_default,
        runs.min_batch_size,
        runs.max_batch_size,
        runs.dataset_size,
        runs.dataset_source,
        runs.dataset_seed,
        runs.dataset_sha256,
        runs.weights_source,
        runs.weights_sha256,
        runs.started_at,
        runs.ended_at,
        coalesce(predicted.predictions, 0) as predictions,
        coalesce(failed.failures, 0) as failures,
        coalesce(failed.failures_read, 0) as failures_read,
        coalesce(failed.failures_preprocess, 0) as failures_preprocess,
        coalesce(failed.failures_inference, 0) as failures_inference,
        coalesce(predicted.predictions, 0) + coalesce(failed.failures, 0) = runs.dataset_size
            and coalesce(accounted.lines_accounted, 0) = runs.dataset_size as is_complete,
        coalesce(predicted.labelled_predictions, 0) as labelled_predictions,
        -- An embedding run's quality figure stands as its accuracy (embedding_retrieval).
        coalesce(retrieval.retrieval_top1, predicted.top1_accuracy) as top1_accuracy,
        predicted.top5_accuracy,
        coalesce(batch_figures.batches, 0) as batches,
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
        -- Each item's share of its batch's latency, averaged over items: batches that ran at once on several
        -- workers each count in full (busy time over items would be inverse throughput, not a latency).
        batch_figures.summed_latency_ms / batch_figures.batched_items as item_latency_mean_ms,
        batch_figures.batched_items / nullif(batch_figures.inference_seconds, 0) as inference_items_per_second,
        coalesce(predicted.predictions, 0) / nullif(run_metrics.wall_seconds, 0) as end_to_end_items_per_second,
        -- End to end with the one-time model load (and, for a compiled or exported model, its compilation or
        -- export) set apart: the rate the same configuration approaches over a much larger input.
        coalesce(predicted.predictions, 0)
            / nullif(run_metrics.wall_seconds - run_metrics.load_model_latency_ms / 1000, 0)
            as items_per_second_after_load,
        coalesce(batch_figures.batches, 0) - coalesce(steady_figures.steady_batches, 0) as warmup_batches,
        {{ var('warmup_seconds') }} as warmup_seconds,
        steady_figures.warmup_ended_at,
        steady_figures.steady_inference_items_per_second,
        steady_figures.steady_batch_latency_p50_ms,
        steady_figures.steady_batch_latency_p99_ms,
        stage_busy.read_busy_seconds,
        stage_busy.preprocess_busy_seconds,
        stage_busy.inference_busy_seconds,
        stage_busy.write_busy_seconds,
        stage_busy.bound_stage,
        stage_busy.bound_share,
        stage_busy.bound,
        run_metrics.wall_seconds,
        run_metrics.peak_rss_mib,
        run_metrics.estimated_cost_usd,
        run_metrics.flops_per_item,
        run_metrics.peak_flops_per_second,
        run_metrics.flops_per_item * batch_figures.batched_items / nullif(batch_figures.inference_seconds, 0)
            as achieved_flops_per_second,
        run_metrics.theoretical_peak_flops_per_second,
        1000 * run_metrics.estimated_cost_usd / nullif(predicted.predictions, 0) as cost_per_1000_inferences_usd,
        runs.fingerprint_id,
        runs.machine_id,
        runs.machine_label,
        runs.torch_cpu_capability,
        runs.project_commit,
        runs.cpu_model,
        runs.usable_cores,
        runs.torch_threads,
        runs.gpu,
        runs.python_version,
        runs.torch_version,
        runs.beam_version,
        runs.dagster_version,
        runs.comparison_key
    from runs
    left join batch_figures using (run_id)
    left join steady_figures using (run_id)
    left join item_figures using (run_id)
    left join run_metrics using (run_id)
    left join predicted using (run_id)
    left join failed using (run_id)
    left join accounted using (run_id)
    left join {{ ref('int_stage_busy') }} as stage_busy using (run_id)
    left join {{ ref('embedding_retrieval') }} as retrieval using (run_id)
)

-- Series number complete runs only: an incomplete run is visible here and nowhere in a trend.
-- Utilization is a share of the measured matmul peak; a run that went faster than the probe did is above the
-- measured ceiling (the probe fell short of what the machine's kernels reach), says so, and gets no share.
select
    *,
    achieved_flops_per_second > peak_flops_per_second as is_above_measured_peak,
    case when achieved_flops_per_second <= peak_flops_per_second
        then achieved_flops_per_second / peak_flops_per_second end as utilization,
    achieved_flops_per_second / nullif(theoretical_peak_flops_per_second, 0) as theoretical_utilization,
    case when is_complete then
        row_number() over (partition by comparison_key, is_complete order by started_at, run_id) end as run_number,
    case when is_complete then count(*) over (partition by comparison_key, is_complete) end as comparable_runs
from summary
