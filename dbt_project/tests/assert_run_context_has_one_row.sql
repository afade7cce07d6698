-- learnops.run_context must hold exactly one row: the run being built. Models and
-- snapshots read the as-of from it (see macros/run_as_of.sql).
with

run_context as (
    select * from {{ source('learnops', 'run_context') }}
),

row_count as (
    select count(*) as row_count from run_context
)

select * from row_count where row_count <> 1
