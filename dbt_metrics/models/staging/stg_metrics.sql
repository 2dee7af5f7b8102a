select
    run_id,
    namespace,
    metric,
    value,
    unit
from {{ source('bench', 'metrics') }}
