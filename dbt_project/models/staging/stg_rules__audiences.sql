with

source as (
    select * from {{ source('rules', 'audience') }}
),

renamed as (
    select
        audience_id,
        name,
        kind,
        stage,
        root_node_id,
        active_from,
        active_until,
        is_in_window,
        add_members,
        remove_members,
        is_broken,
        broken_reason,
        broken_since_run_id,
        definition,
        source_file,
        source_line
    from source
)

select * from renamed
