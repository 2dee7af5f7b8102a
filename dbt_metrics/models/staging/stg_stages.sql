-- One row per timed step of a stage over one bundle (bench_assets/pipeline/stage_timing.py); busy time in seconds.
select
    run_id,
    stage,
    step,
    items,
    busy_us / 1e6 as busy_seconds
from {{ source('bench', 'stages') }}
