-- Each model across machines, side by side: one row per benchmark, model, profile, input, configuration (every
-- run setting), thread count and runner, and machine, with the medians over that machine's complete runs and its
-- speed relative to the fastest machine that ran the same thing. Results from several machines land in one file
-- through `python -m bench_assets.cli.merge`; each machine is named by its CPU or GPU and instruction sets.
with runs as (
    select *
    from {{ ref('run_summary') }}
    where is_complete and inference_items_per_second is not null
),

per_machine as (
    select
        benchmark,
        model,
        profile,
        dataset_sha256,
        {%- for setting in run_settings() %}
        {{ setting.setting }},
        {%- endfor %}
        torch_threads,
        runner,
        machine_id,
        any_value(machine_label) as machine_label,
        count(*) as runs,
        median(inference_items_per_second) as inference_items_per_second,
        median(end_to_end_items_per_second) as end_to_end_items_per_second,
        median(batch_latency_p99_ms) as batch_latency_p99_ms,
        arg_max(run_id, started_at) as latest_run_id,
        max(started_at) as latest_started_at
    from runs
    group by all
)

select
    *,
    count(*) over same_work as machines,
    inference_items_per_second / max(inference_items_per_second) over same_work as relative_to_fastest
from per_machine
window same_work as (
    partition by benchmark, model, profile, dataset_sha256,
    {%- for setting in run_settings() %} {{ setting.setting }},{%- endfor %} torch_threads, runner
)
