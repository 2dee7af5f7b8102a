select
    tuning_id,
    benchmark,
    model,
    profile,
    sample_items,
    budget_seconds,
    dagster_run_id,
    started_at,
    ended_at,
    epoch(ended_at) - epoch(started_at) as elapsed_seconds
from {{ source('tuning', 'tunings') }}
