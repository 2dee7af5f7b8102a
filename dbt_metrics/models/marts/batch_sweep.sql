-- One row per point of each batch-size sweep: the sample at one fixed batch size (min = max = batch_size), or
-- with the benchmark's adaptive batching (batch_size null). A view, so that the sweep asset reads its points the
-- moment they land (bench_assets/store/marts.py). A sweep runs on one process, where batches never overlap: the
-- summed batch latency is the busy time run_summary takes (the union of the batches' spans).
-- Its comment: the digest of the definitions it was made from (bench_assets/store/marts.py).
{{ config(materialized='view', post_hook="COMMENT ON VIEW {{ this }} IS '{{ var(\"definitions_digest\", \"\") }}'") }}
with points as (
    select
        sweep_id,
        fixed_batch_size as batch_size,
        count(*) as batches,
        avg(batch_size) as mean_batch_size,
        sum(batch_size) / nullif(sum(latency_ms) / 1000, 0) as inference_items_per_second,
        quantile_cont(latency_ms, 0.50) as batch_latency_p50_ms,
        quantile_cont(latency_ms, 0.99) as batch_latency_p99_ms
    from {{ ref('stg_sweep_batches') }}
    group by sweep_id, fixed_batch_size
),

-- Only a fixed batch size can be the answer: adaptive batching is shown beside them.
scored as (
    select
        sweeps.*,
        points.* exclude (sweep_id),
        points.batch_size is not null and points.batch_latency_p99_ms <= sweeps.latency_budget_ms as is_within_budget
    from {{ ref('stg_sweeps') }} as sweeps
    join points using (sweep_id)
)

select
    * exclude (is_within_budget),
    is_within_budget and row_number() over (
        partition by sweep_id, is_within_budget order by inference_items_per_second desc, batch_size
    ) = 1 as best_within_budget
from scored
