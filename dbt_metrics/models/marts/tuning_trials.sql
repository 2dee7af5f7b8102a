-- One row per configuration a tuning tried or passed over (bench_assets/analysis/tuning.py), with its run's figures
-- from run_summary and its verdict under the accuracy guard (the rule best_configuration applies). A view, so that
-- the tuning reads each trial's figures the moment its rows land (bench_assets/store/marts.py).
--
-- A trial is eligible when its run is complete, had no inference failure and fails the guard neither on the sample
-- nor, where the tuner ran it again there, over the whole input. The best (is_best, at most one per tuning) is the
-- eligible trial with the highest rate once the one-time model load is set apart (end to end where the runner
-- reports no load), as in best_configuration. The front (is_on_front):
-- the eligible trials no other eligible trial of the tuning beats on that rate, p99 batch latency and cost per
-- 1,000 inferences at once (a cost nobody priced does not count against a trial).
{{ config(materialized='view', post_hook="COMMENT ON VIEW {{ this }} IS '{{ var(\"definitions_digest\", \"\") }}'") }}
with judged_trials as (
    select
        listed.tuning_id,
        listed.trial,
        listed.phase,
        listed.changes,
        listed.outcome,
        listed.reason,
        listed.run_id,
        tunings.benchmark,
        tunings.model,
        summary.machine_id,
        summary.machine_label,
        {{ run_setting_columns('summary') }},
        summary.batching_mode,
        summary.min_batch_size,
        summary.max_batch_size,
        coalesce(summary.is_beam_default, false) as is_beam_default,
        summary.predictions,
        summary.failures_inference,
        case when summary.run_id is not null then {{ accuracy_guard('summary', 'agreement') }} end as accuracy_guard,
        agreement.confident_agreement,
        summary.top1_accuracy,
        summary.wall_seconds,
        summary.load_model_latency_ms / 1000 as load_seconds,
        summary.end_to_end_items_per_second,
        summary.items_per_second_after_load,
        summary.inference_items_per_second,
        coalesce(summary.items_per_second_after_load, summary.end_to_end_items_per_second)
            as ranking_items_per_second,
        summary.batch_latency_p99_ms,
        summary.cost_per_1000_inferences_usd,
        summary.run_id is not null
            and summary.is_complete
            and summary.inference_items_per_second is not null
            and summary.failures_inference = 0 as is_measured
    from {{ ref('stg_trials') }} as listed
    join {{ ref('stg_tunings') }} as tunings using (tuning_id)
    left join {{ ref('run_summary') }} as summary using (run_id)
    left join {{ ref('configuration_agreement') }} as agreement using (run_id)
),

-- The configurations the tuner ran again over the whole input (phase 'confirmation', where its sample is smaller)
-- that failed there: the guard failed them, or the run was incomplete or had inference failures. A configuration
-- that changes answers can pass on a sample and fail on more items.
failed_confirmations as (
    select distinct tuning_id, changes, true as fails_on_whole_input
    from judged_trials
    where phase = 'confirmation' and outcome = 'ran' and (accuracy_guard = 'fails' or not is_measured)
),

-- Confirmation runs are judged, not ranked: their rates are over another input than the sample's.
eligible as (
    select
        judged_trials.*,
        coalesce(failed_confirmations.fails_on_whole_input, false) as fails_on_whole_input,
        is_measured and accuracy_guard != 'fails' and phase != 'confirmation'
            and failed_confirmations.fails_on_whole_input is null as is_eligible
    from judged_trials
    left join failed_confirmations using (tuning_id, changes)
),

fronted as (
    select
        candidate.*,
        candidate.is_eligible and not exists (
            select 1
            from eligible as other
            where other.tuning_id = candidate.tuning_id
                and other.is_eligible
                and other.trial != candidate.trial
                and other.ranking_items_per_second >= candidate.ranking_items_per_second
                and other.batch_latency_p99_ms <= candidate.batch_latency_p99_ms
                and coalesce(other.cost_per_1000_inferences_usd <= candidate.cost_per_1000_inferences_usd, true)
                and (other.ranking_items_per_second > candidate.ranking_items_per_second
                    or other.batch_latency_p99_ms < candidate.batch_latency_p99_ms
                    or coalesce(other.cost_per_1000_inferences_usd < candidate.cost_per_1000_inferences_usd, false))
        ) as is_on_front
    from eligible as candidate
),

-- Beam's default as the tuning ran it over the sample: its first trial.
beam_default as (
    select tuning_id, end_to_end_items_per_second, ranking_items_per_second
    from fronted
    where is_beam_default and phase != 'confirmation'
    qualify row_number() over (partition by tuning_id order by trial) = 1
)

select
    fronted.*,
    fronted.is_eligible and row_number() over (
        partition by fronted.tuning_id, fronted.is_eligible
        order by fronted.ranking_items_per_second desc, fronted.inference_items_per_second desc, fronted.trial
    ) = 1 as is_best,
    fronted.end_to_end_items_per_second / nullif(beam_default.end_to_end_items_per_second, 0)
        as end_to_end_speedup_over_beam_default,
    fronted.ranking_items_per_second / nullif(beam_default.ranking_items_per_second, 0)
        as ranking_speedup_over_beam_default
from fronted
left join beam_default using (tuning_id)
