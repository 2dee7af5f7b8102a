select
    run_id,
    item_id,
    line,
    stage,
    reason
from {{ source('bench', 'failures') }}
