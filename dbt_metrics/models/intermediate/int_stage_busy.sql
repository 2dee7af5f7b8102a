-- Each run's busy seconds per stage, summed over its bundles and workers: the worker-seconds each stage took, so
-- that shares compare like with like on any number of workers. Read, preprocess and write come from the stage
-- records; inference is its batches' summed latency (the span batch_timing.py times). A run recorded before
-- stages were timed has no row. The bound is the stage with the largest share of the run's busy time.
with recorded as (
    select run_id, stage, sum(busy_seconds) as busy_seconds
    from {{ ref('stg_stages') }}
    group by run_id, stage
),

inference as (
    select run_id, 'inference' as stage, sum(latency_ms) / 1000 as busy_seconds
    from {{ ref('stg_batches') }}
    where run_id in (select run_id from recorded)
    group by run_id
),

stages as (
    select * from recorded
    union all
    select * from inference
),

per_run as (
    select
        run_id,
        coalesce(sum(busy_seconds) filter (where stage = 'read'), 0) as read_busy_seconds,
        coalesce(sum(busy_seconds) filter (where stage = 'preprocess'), 0) as preprocess_busy_seconds,
        coalesce(sum(busy_seconds) filter (where stage = 'inference'), 0) as inference_busy_seconds,
        coalesce(sum(busy_seconds) filter (where stage = 'write'), 0) as write_busy_seconds,
        sum(busy_seconds) as busy_seconds,
        arg_max(stage, busy_seconds) as bound_stage,
        max(busy_seconds) / nullif(sum(busy_seconds), 0) as bound_share
    from stages
    group by run_id
)

select
    *,
    -- As make bench, the report and a run's metadata show it: "preprocess-bound: 58% of busy time".
    bound_stage || '-bound: ' || round(100 * bound_share)::int || '% of busy time' as bound
from per_run
