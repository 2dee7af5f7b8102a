select
    comparison_key,
    metric,
    run_id,
    value_before,
    value_after,
    change_pct,
    runs_before,
    runs_after,
    is_regression,
    detected_at
from {{ source('analysis', 'change_points') }}
