-- One row per run, with the fingerprint fields that say where it ran, the batching and model configuration it
-- was given (runs recorded before a setting existed ran at its default) and the input it read. comparison_key is
-- the platform's (bench_assets/store/runs.py COMPARISON: the same work on the same machine in the same
-- configuration); runs written before it existed get one from what they recorded, so they stay apart from newer
-- runs, as do runs keyed before library versions left the key (their key includes the whole fingerprint).
select
    run_id,
    benchmark,
    model,
    profile,
    runner,
    runner_options,
    batching,
    cast(batching ->> 'min_batch_size' as integer) as min_batch_size,
    cast(batching ->> 'max_batch_size' as integer) as max_batch_size,
    batching ->> 'mode' as batching_mode,
    -- One column per run setting (dbt_metrics/macros/run_settings.sql); a run recorded before a setting existed
    -- ran at its default.
    {%- for setting in run_settings() %}
    coalesce(batching ->> '{{ setting.setting }}', '{{ setting.default_value }}') as {{ setting.setting }},
    {%- endfor %}
    -- The reference configuration (every setting that configures the model at its default) every other one is
    -- checked against.
    {% for setting in run_settings(configures_model_only=true) -%}
    {% if not loop.first %}and {% endif %}coalesce(batching ->> '{{ setting.setting }}', '{{ setting.default_value }}') = '{{ setting.default_value }}'
    {% endfor -%}
    as is_reference_configuration,
    coalesce(cast(batching ->> 'beam_default' as boolean), false) as is_beam_default,
    dataset_size,
    dataset ->> 'source' as dataset_source,
    cast(dataset ->> 'seed' as integer) as dataset_seed,
    dataset ->> 'sha256' as dataset_sha256,
    weights_source,
    weights_sha256,
    fingerprint,
    fingerprint_id,
    -- The machine by what decides its speed (bench_assets/machine/fingerprint.py). Runs recorded before the
    -- machine was identified name it by their CPU model, cores and GPU: their instruction sets are unknown.
    coalesce(machine_id, 'legacy-' || left(md5(concat_ws('|',
        fingerprint ->> 'cpu_model', fingerprint ->> 'usable_cores', fingerprint ->> 'gpu'
    )), 16)) as machine_id,
    coalesce(machine_label, concat_ws(', ',
        fingerprint ->> 'cpu_model', (fingerprint ->> 'usable_cores') || ' cores', fingerprint ->> 'gpu'
    ) || ' (instruction sets not recorded)') as machine_label,
    fingerprint -> 'machine' -> 'instruction_sets' as instruction_sets,
    fingerprint -> 'machine' ->> 'torch_cpu_capability' as torch_cpu_capability,
    coalesce(fingerprint ->> 'commit', 'unknown') as project_commit,
    fingerprint -> 'packages' as packages,
    fingerprint ->> 'cpu_model' as cpu_model,
    cast(fingerprint ->> 'usable_cores' as integer) as usable_cores,
    coalesce(torch_threads, cast(fingerprint ->> 'torch_threads' as integer)) as torch_threads,
    fingerprint ->> 'gpu' as gpu,
    fingerprint ->> 'python' as python_version,
    fingerprint -> 'packages' ->> 'torch' as torch_version,
    fingerprint -> 'packages' ->> 'apache-beam' as beam_version,
    fingerprint -> 'packages' ->> 'dagster' as dagster_version,
    coalesce(comparison_key, 'legacy-' || md5(concat_ws('|',
        benchmark, model, profile, dataset_size, batching, weights_sha256, fingerprint_id
    ))) as comparison_key,
    dagster_run_id,
    started_at,
    ended_at,
    status,
    error
from {{ source('bench', 'runs') }}
