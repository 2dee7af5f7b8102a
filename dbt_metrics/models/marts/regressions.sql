-- Changes for the worse in a headline metric's history: the run where each began, the medians of the runs
-- before and after it, and how many comparable runs have happened since.
with change_points as (
    select * from {{ ref('stg_change_points') }}
    where is_regression
),

series as (
    select comparison_key, max(run_number) as latest_run_number
    from {{ ref('run_summary') }}
    group by comparison_key
)

select
    runs.benchmark,
    runs.model,
    runs.profile,
    change_points.comparison_key,
    change_points.metric,
    headline.label,
    headline.unit,
    headline.better,
    change_points.run_id,
    runs.started_at as changed_at,
    change_points.value_before,
    change_points.value_after,
    change_points.change_pct,
    change_points.runs_before,
    change_points.runs_after,
    series.latest_run_number - runs.run_number + 1 as runs_since_change,
    change_points.detected_at
from change_points
left join {{ ref('run_summary') }} as runs using (run_id)
left join series on series.comparison_key = change_points.comparison_key
left join {{ ref('headline_metrics') }} as headline using (metric)
