-- The latest complete run of each model, with its figures and how many finished runs the model has
-- (incomplete ones included: they are listed apart in the report).
select
    *,
    count(*) over (partition by benchmark, model) as finished_runs
from {{ ref('run_summary') }}
qualify row_number() over (
    partition by benchmark, model order by is_complete desc, started_at desc, run_id desc
) = 1
