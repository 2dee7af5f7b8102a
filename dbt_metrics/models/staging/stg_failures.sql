select
    run_id,
    item_id,
    line,
    stage,
    reason,
    traceback
from {{ source('bench', 'failures') }}
