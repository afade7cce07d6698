with

organisations as (
    select * from {{ ref('int_organisations_pathed') }}
),

final as (
    select
        organisation_id,
        name,
        short_name,
        description,
        parent_id,
        depth,
        path,
        framework_id,
        type_id
    from organisations
)

select * from final
