select
    run_id,
    line,
    vector
from {{ source('bench', 'embeddings') }}
