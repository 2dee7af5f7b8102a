select
    run_id,
    item_id,
    line,
    batch_id,
    predicted_index,
    predicted_label,
    score,
    expected_label,
    detail
from {{ source('bench', 'predictions') }}
