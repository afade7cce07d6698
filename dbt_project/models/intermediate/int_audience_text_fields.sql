{#-
    The (kind, field) pairs that leaves read, numbered: int_audience_text_subjects tags each
    text with its field's number, and int_audience_atom_members joins on (field_no, value),
    one integer and the text, rather than on two more texts and a flag (14M subject rows at
    1M users: 8.5 -> 5.9 CPU-s for the atom members). The numbers hold within one run only.
-#}

with

fields as (
    select distinct leaf_kind, coalesce(field_name, '') as field_name, is_custom_field
    from {{ ref('stg_rules__audience_nodes') }}
    where node_type = 'leaf'
),

final as (
    select
        leaf_kind,
        field_name,
        is_custom_field,
        (dense_rank() over (order by leaf_kind, field_name, is_custom_field))::integer
            as field_no
    from fields
)

select * from final
