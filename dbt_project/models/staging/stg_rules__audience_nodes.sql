with

source as (
    select * from {{ source('rules', 'audience_node') }}
),

renamed as (
    select
        node_id,
        audience_id,
        parent_node_id,
        depth,
        child_position,
        node_type,
        leaf_kind,
        field_name,
        coalesce(is_custom_field, false) as is_custom_field,
        operator,
        match_operator,
        is_complement,
        coalesce(positive_children, 0) as positive_children,
        coalesce(complement_children, 0) as complement_children,
        include_children,
        direct_only,
        has_direct_reports,
        match,
        lower_at,
        upper_at,
        lower_date,
        upper_date,
        coalesce(value_count, 0) as value_count,
        certification_states
    from source
)

select * from renamed
