-- The answer in one line, per model, machine, profile and input: the fastest configuration measured so far
-- (precision, layout, quantization, compilation, backend, batching) and its speed-up over Beam's default (the
-- benchmark's run config as shipped: what Beam's own benchmark runs) on the same machine and input.
--
-- Like with like: each configuration (one comparison_key: the same settings, weights, input and machine) is
-- summarized by the medians over its complete runs, and every figure says how many runs it rests on. A
-- configuration qualifies when none of its runs had an inference failure and, unless it is the reference
-- configuration or runs seeded random weights (nothing to agree on), every run passed the accuracy guard
-- (configuration_agreement). The fastest is the one with the highest rate once the one-time model load is set
-- apart (what a much larger input would see); the end-to-end speed-up at the size that was run stands beside it,
-- since a load (a compilation, an ONNX export) can outweigh a faster inference stage over a small input.
with runs as (
    select
        summary.*,
        {{ accuracy_guard('summary', 'agreement') }} as accuracy_guard
    from {{ ref('run_summary') }} as summary
    left join {{ ref('configuration_agreement') }} as agreement using (run_id)
    where summary.is_complete and summary.inference_items_per_second is not null
),

configurations as (
    select
        benchmark, model, machine_id, profile, dataset_sha256, comparison_key,
        arg_max(run_id, started_at) as latest_run_id,
        any_value(cpu_model) as cpu_model,
        any_value(gpu) as gpu,
        any_value(is_beam_default) as is_beam_default,
        {%- for setting in run_settings() %}
        any_value({{ setting.setting }}) as {{ setting.setting }},
        {%- endfor %}
        any_value(batching_mode) as batching_mode,
        any_value(min_batch_size) as min_batch_size,
        any_value(max_batch_size) as max_batch_size,
        count(*) as runs,
        sum(failures_inference) as failures_inference,
        -- The weakest verdict among the runs: one failing run fails the configuration.
        case
            when bool_or(accuracy_guard = 'fails') then 'fails'
            else any_value(accuracy_guard)
        end as accuracy_guard,
        median(end_to_end_items_per_second) as end_to_end_items_per_second,
        median(items_per_second_after_load) as items_per_second_after_load,
        median(inference_items_per_second) as inference_items_per_second,
        median(steady_inference_items_per_second) as steady_inference_items_per_second,
        count(steady_inference_items_per_second) as steady_runs,
        median(load_model_latency_ms) / 1000 as load_seconds,
        median(wall_seconds) as wall_seconds,
        median(predictions) as predictions
    from runs
    group by benchmark, model, machine_id, profile, dataset_sha256, comparison_key
),

ranked as (
    select
        *,
        -- Without a load latency (a runner that returns no Beam metrics) the end-to-end rate ranks.
        coalesce(items_per_second_after_load, end_to_end_items_per_second) as ranking_items_per_second
    from configurations
),

fastest as (
    select *
    from ranked
    where failures_inference = 0 and accuracy_guard != 'fails'
    qualify row_number() over (
        partition by benchmark, model, machine_id, profile, dataset_sha256
        order by ranking_items_per_second desc, inference_items_per_second desc, comparison_key
    ) = 1
),

-- Beam's default on this machine and input: its most-run configuration (normally there is one).
beam_default as (
    select *
    from ranked
    where is_beam_default
    qualify row_number() over (
        partition by benchmark, model, machine_id, profile, dataset_sha256 order by runs desc, comparison_key
    ) = 1
)

select
    fastest.benchmark,
    fastest.model,
    fastest.profile,
    fastest.machine_id,
    fastest.dataset_sha256,
    fastest.cpu_model,
    fastest.gpu,
    fastest.latest_run_id as run_id,
    fastest.comparison_key,
    {{ run_setting_columns('fastest') }},
    fastest.batching_mode,
    fastest.min_batch_size,
    fastest.max_batch_size,
    fastest.is_beam_default,
    fastest.accuracy_guard,
    fastest.runs,
    fastest.predictions,
    fastest.wall_seconds,
    fastest.load_seconds,
    fastest.end_to_end_items_per_second,
    fastest.items_per_second_after_load,
    fastest.inference_items_per_second,
    fastest.steady_inference_items_per_second,
    fastest.steady_runs,
    beam_default.runs as beam_default_runs,
    beam_default.end_to_end_items_per_second as beam_default_end_to_end_items_per_second,
    beam_default.items_per_second_after_load as beam_default_items_per_second_after_load,
    beam_default.inference_items_per_second as beam_default_inference_items_per_second,
    fastest.end_to_end_items_per_second / nullif(beam_default.end_to_end_items_per_second, 0)
        as end_to_end_speedup_over_beam_default,
    fastest.items_per_second_after_load / nullif(beam_default.items_per_second_after_load, 0)
        as after_load_speedup_over_beam_default,
    fastest.inference_items_per_second / nullif(beam_default.inference_items_per_second, 0)
        as inference_speedup_over_beam_default
from fastest
left join beam_default using (benchmark, model, machine_id, profile, dataset_sha256)
