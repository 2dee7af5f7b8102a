-- Changes for the worse in a headline metric's history: the run where each began, the medians of the runs
-- before and after it, how many comparable runs have happened since, and what changed under test between the
-- last run before it and the first after it (library versions, Python, the project's commit), as
-- "torch 2.14.1 -> 2.15.0; commit a1b2c3d -> e4f5a6b".
with change_points as (
    select * from {{ ref('change_points') }}
    where is_regression
),

series as (
    select comparison_key, max(run_number) as latest_run_number
    from {{ ref('run_summary') }}
    group by comparison_key
),

runs as (
    select run_id, coalesce(packages, '{}'::json) as packages, python_version, project_commit
    from {{ ref('stg_runs') }}
),

-- Each package either run recorded, with its version on both sides.
package_versions as (
    select
        comparison_key,
        metric,
        run_id,
        package,
        before_packages ->> package as version_before,
        after_packages ->> package as version_after
    from (
        select
            change_points.comparison_key,
            change_points.metric,
            change_points.run_id,
            before.packages as before_packages,
            after.packages as after_packages,
            unnest(list_distinct(list_concat(json_keys(before.packages), json_keys(after.packages)))) as package
        from change_points
        join runs as before on before.run_id = change_points.previous_run_id
        join runs as after on after.run_id = change_points.run_id
    )
),

packages_changed as (
    select
        comparison_key,
        metric,
        run_id,
        string_agg(
            package || ' ' || coalesce(version_before, 'none') || ' -> ' || coalesce(version_after, 'none'), '; '
            order by package
        ) as packages_changed
    from package_versions
    where version_before is distinct from version_after
    group by comparison_key, metric, run_id
),

what_changed as (
    select
        change_points.comparison_key,
        change_points.metric,
        change_points.run_id,
        nullif(concat_ws('; ',
            packages_changed.packages_changed,
            case when before.python_version is distinct from after.python_version
                then 'python ' || coalesce(before.python_version, 'unknown') || ' -> '
                    || coalesce(after.python_version, 'unknown') end,
            case when before.project_commit <> after.project_commit
                then 'commit ' || left(before.project_commit, 7) || ' -> ' || left(after.project_commit, 7) end
        ), '') as what_changed
    from change_points
    join runs as before on before.run_id = change_points.previous_run_id
    join runs as after on after.run_id = change_points.run_id
    left join packages_changed
        on packages_changed.comparison_key = change_points.comparison_key
        and packages_changed.metric = change_points.metric
        and packages_changed.run_id = change_points.run_id
)

select
    runs.benchmark,
    runs.model,
    runs.profile,
    runs.machine_label,
    change_points.comparison_key,
    change_points.metric,
    headline.label,
    headline.unit,
    headline.better,
    change_points.previous_run_id,
    change_points.run_id,
    runs.started_at as changed_at,
    change_points.value_before,
    change_points.value_after,
    change_points.change_pct,
    change_points.runs_before,
    change_points.runs_after,
    series.latest_run_number - runs.run_number + 1 as runs_since_change,
    coalesce(what_changed.what_changed, 'nothing recorded changed') as what_changed
from change_points
left join {{ ref('run_summary') }} as runs using (run_id)
left join series on series.comparison_key = change_points.comparison_key
left join what_changed
    on what_changed.comparison_key = change_points.comparison_key
    and what_changed.metric = change_points.metric
    and what_changed.run_id = change_points.run_id
left join {{ ref('headline_metrics') }} as headline on headline.metric = change_points.metric
