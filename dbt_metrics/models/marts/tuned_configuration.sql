-- One row per tuning: the model's best configuration on this machine over the tuning's sample (tuning_trials'
-- is_best: eligible under the accuracy guard and the fastest with the one-time load set apart), its load time and
-- its speed-ups over Beam's default as the tuning ran it, and after how many items its slower load (a
-- compilation, an export) pays off: with load L and rate r after the load, n items take L + n / r, so a
-- configuration loading longer but running faster than Beam's default overtakes it after
-- (L - L_default) / (1 / r_default - 1 / r) items (0 when it loads no slower). A view, read by the tuning asset the
-- moment its last trial lands.
{{ config(materialized='view', post_hook="COMMENT ON VIEW {{ this }} IS '{{ var(\"definitions_digest\", \"\") }}'") }}
with tuned_trials as (
    select * from {{ ref('tuning_trials') }}
),

counts as (
    select
        tuning_id,
        count(*) filter (where outcome in ('ran', 'failed')) as trials_run,
        count(*) filter (where outcome = 'refused') as trials_refused,
        count(*) filter (where outcome = 'skipped') as trials_skipped,
        count(*) filter (where is_eligible) as trials_eligible,
        count(*) filter (where is_on_front) as front_trials
    from tuned_trials
    group by tuning_id
),

best as (
    select * from tuned_trials where is_best
),

default_trial as (
    select *
    from tuned_trials
    where is_beam_default and phase != 'confirmation'
    qualify row_number() over (partition by tuning_id order by trial) = 1
),

-- The configurations other than Beam's default (the guard's reference there) that the tuner ran again over the
-- whole input and that held there: complete, no inference failure, the guard passing.
confirmed as (
    select distinct tuning_id, changes, true as guard_confirmed_over_whole_input
    from tuned_trials
    where phase = 'confirmation' and outcome = 'ran' and not is_beam_default and not fails_on_whole_input
)

select
    tunings.tuning_id,
    tunings.benchmark,
    tunings.model,
    tunings.profile,
    tunings.sample_items,
    tunings.budget_seconds,
    tunings.elapsed_seconds,
    tunings.started_at,
    tunings.ended_at,
    counts.trials_run,
    counts.trials_refused,
    counts.trials_skipped,
    counts.trials_eligible,
    counts.front_trials,
    best.machine_id,
    best.machine_label,
    best.trial,
    best.run_id,
    best.changes,
    {{ run_setting_columns('best') }},
    best.batching_mode,
    best.min_batch_size,
    best.max_batch_size,
    best.is_beam_default,
    best.accuracy_guard,
    coalesce(confirmed.guard_confirmed_over_whole_input, false) as guard_confirmed_over_whole_input,
    best.load_seconds,
    best.end_to_end_items_per_second,
    best.items_per_second_after_load,
    best.ranking_items_per_second,
    best.batch_latency_p99_ms,
    best.cost_per_1000_inferences_usd,
    default_trial.run_id as beam_default_run_id,
    default_trial.load_seconds as beam_default_load_seconds,
    default_trial.end_to_end_items_per_second as beam_default_end_to_end_items_per_second,
    default_trial.ranking_items_per_second as beam_default_ranking_items_per_second,
    best.end_to_end_speedup_over_beam_default,
    best.ranking_speedup_over_beam_default,
    case
        when best.load_seconds is null or default_trial.load_seconds is null then null
        when best.load_seconds <= default_trial.load_seconds then 0
        when best.ranking_items_per_second > default_trial.ranking_items_per_second then cast(ceil(
            (best.load_seconds - default_trial.load_seconds)
            / (1 / default_trial.ranking_items_per_second - 1 / best.ranking_items_per_second)
        ) as bigint)
    end as break_even_items
from {{ ref('stg_tunings') }} as tunings
join counts using (tuning_id)
left join best using (tuning_id)
left join default_trial using (tuning_id)
left join confirmed on confirmed.tuning_id = best.tuning_id and confirmed.changes = best.changes
