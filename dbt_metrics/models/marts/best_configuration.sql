-- The answer in one line, per model, machine, profile and input: the fastest configuration measured so far
-- (precision, layout, quantization, compilation, backend, batching) among complete runs that pass the accuracy
-- guard (runs in the reference configuration pass by definition), its inference throughput, and its speed-up
-- over Beam's example default (the benchmark's run config as shipped) measured on the same machine.
with candidates as (
    select
        summary.*,
        coalesce(agreement.passes, summary.is_reference_configuration) as guarded
    from {{ ref('run_summary') }} as summary
    left join {{ ref('configuration_agreement') }} as agreement using (run_id)
    where summary.is_complete and summary.inference_items_per_second is not null
),

fastest as (
    select *
    from candidates
    where guarded
    qualify row_number() over (
        partition by benchmark, model, fingerprint_id, profile, dataset_sha256
        order by inference_items_per_second desc, started_at desc
    ) = 1
),

beam_default as (
    select benchmark, model, fingerprint_id, profile, dataset_sha256, inference_items_per_second
    from candidates
    where is_beam_default
    qualify row_number() over (
        partition by benchmark, model, fingerprint_id, profile, dataset_sha256 order by started_at desc
    ) = 1
)

select
    fastest.benchmark,
    fastest.model,
    fastest.profile,
    fastest.fingerprint_id,
    fastest.cpu_model,
    fastest.gpu,
    fastest.run_id,
    fastest.precision,
    fastest.memory_format,
    fastest.quantization,
    fastest.compile,
    fastest.backend,
    fastest.batching_mode,
    fastest.min_batch_size,
    fastest.max_batch_size,
    fastest.inference_items_per_second,
    beam_default.inference_items_per_second as beam_default_items_per_second,
    fastest.inference_items_per_second / nullif(beam_default.inference_items_per_second, 0) as speedup_over_beam_default
from fastest
left join beam_default using (benchmark, model, fingerprint_id, profile, dataset_sha256)
