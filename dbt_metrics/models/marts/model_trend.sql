-- One row per run and headline metric: each comparable series over time, as charted and as searched for
-- regressions. A metric a run did not measure (Beam's means on a runner without metrics) has no row, and an
-- incomplete run (one that lost items) none at all.
with measured as (
    unpivot (
        select
            run_id,
            mean_batch_size,
            mean_batch_latency_ms,
            load_model_latency_ms,
            batch_latency_p50_ms,
            batch_latency_p99_ms,
            inference_items_per_second,
            end_to_end_items_per_second,
            peak_rss_mib
        from {{ ref('run_summary') }}
        where is_complete
    )
    on columns(* exclude (run_id))
    into name metric value value
)

select
    runs.benchmark,
    runs.model,
    runs.profile,
    runs.comparison_key,
    runs.fingerprint_id,
    runs.run_id,
    runs.started_at,
    runs.run_number,
    measured.metric,
    headline.label,
    headline.unit,
    headline.better,
    measured.value,
    lag(measured.value) over series as previous_value,
    100 * (measured.value / nullif(lag(measured.value) over series, 0) - 1) as change_pct,
    median(measured.value) over (
        partition by runs.comparison_key, measured.metric
        order by runs.run_number
        rows between 4 preceding and current row
    ) as rolling_median_5
from measured
join {{ ref('run_summary') }} as runs using (run_id)
left join {{ ref('headline_metrics') }} as headline using (metric)
window series as (partition by runs.comparison_key, measured.metric order by runs.run_number)
