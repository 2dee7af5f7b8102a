select
    tuning_id,
    trial,
    phase,
    changes,
    run_id,
    outcome,
    reason
from {{ source('tuning', 'trials') }}
