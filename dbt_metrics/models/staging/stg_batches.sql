-- One row per inference batch; latency in milliseconds, start as a timestamp.
select
    run_id,
    batch_id,
    batch_size,
    latency_us / 1000.0 as latency_ms,
    to_timestamp(started_at) as started_at
from {{ source('bench', 'batches') }}
