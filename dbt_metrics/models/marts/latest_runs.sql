-- The latest finished run of each model, with its figures and how many finished runs the model has.
select
    *,
    count(*) over (partition by benchmark, model) as finished_runs
from {{ ref('run_summary') }}
qualify row_number() over (partition by benchmark, model order by started_at desc, run_id desc) = 1
