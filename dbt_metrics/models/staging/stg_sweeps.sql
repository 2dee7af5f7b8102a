select
    sweep_id,
    benchmark,
    model,
    profile,
    fingerprint_id,
    items,
    latency_budget_ms,
    swept_at
from {{ source('bench', 'sweeps') }}
