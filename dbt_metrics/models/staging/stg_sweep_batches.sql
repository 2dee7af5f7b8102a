-- One row per inference batch of a sweep's point; latency in milliseconds, as stg_batches.
select
    sweep_id,
    fixed_batch_size,
    batch_id,
    batch_size,
    latency_us / 1000.0 as latency_ms
from {{ source('bench', 'sweep_batches') }}
