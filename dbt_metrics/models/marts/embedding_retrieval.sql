-- The embedding benchmarks' quality figure: each query item (a prediction whose expected_label names the text it
-- should find: an altered copy of a corpus sentence) looks for its nearest neighbour, by cosine similarity, among
-- the run's other embeddings that are not queries; the share that find their original. run_summary reports it as
-- the run's top-1 accuracy.
with vectors as (
    select embeddings.run_id, embeddings.line, embeddings.vector, predictions.item_id, predictions.expected_label
    from {{ ref('stg_embeddings') }} as embeddings
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
