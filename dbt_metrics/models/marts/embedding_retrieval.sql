-- The embedding benchmarks' quality figure: each query item (a prediction whose expected_label names the text it
-- should find: an altered copy of a corpus sentence) looks for its nearest neighbour, by cosine similarity, among
-- the run's other embeddings that are not queries; the share that find their original. run_summary reports it as
-- the run's top-1 accuracy.
--
-- Incremental: every query is compared with the whole pool (the quality figure is retrieval among the whole
-- corpus), 300 x ~50,000 cosines of 384-d vectors for a full-profile run, and a run's embeddings never change once
-- its transaction has loaded them: each run is graded once, at the first build after it finished, not again at
-- every build. `dbt build --full-refresh` grades every run again.
{{ config(materialized='incremental', unique_key='run_id') }}

with ungraded_runs as (
    select distinct run_id
    from {{ ref('stg_predictions') }}
    where expected_label is not null
    {% if is_incremental() %}
        and run_id not in (select run_id from {{ this }})
    {% endif %}
),

vectors as (
    select embeddings.run_id, embeddings.line, embeddings.vector, predictions.item_id, predictions.expected_label
    from {{ ref('stg_embeddings') }} as embeddings
    join ungraded_runs using (run_id)
    join {{ ref('stg_predictions') }} as predictions using (run_id, line)
),

nearest as (
    select
        query.run_id,
        query.line,
        query.expected_label,
        arg_max(pool.item_id, list_cosine_similarity(query.vector, pool.vector)) as nearest_item
    from vectors as query
    join vectors as pool on pool.run_id = query.run_id and pool.expected_label is null
    where query.expected_label is not null
    group by query.run_id, query.line, query.expected_label
)

select
    run_id,
    count(*) as retrieval_queries,
    avg((nearest_item = expected_label)::int) as retrieval_top1
from nearest
group by run_id
