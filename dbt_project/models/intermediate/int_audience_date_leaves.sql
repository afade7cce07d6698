{#-
    Date leaves as ranges (docs/audiences.md, "date field"): per leaf, the field it reads as a
    number (field_no, shared with int_audience_date_subjects) and its inclusive bounds in the
    field's unit: microseconds since 1970 for the access instants, days since 1970 for
    calendar dates (job dates, custom dates). A missing bound is open.
-#}

with

date_leaves as (
    select * from {{ ref('stg_rules__audience_nodes') }}
    where node_type = 'leaf' and leaf_kind = 'date_field'
),

date_fields as (
    select
        field_name,
        is_custom_field,
        not is_custom_field and field_name in ('first_access', 'last_access') as is_instant,
        dense_rank() over (order by field_name, is_custom_field) - 1 as field_no
    from (select distinct field_name, is_custom_field from date_leaves)
),

final as (
    select
        date_leaves.node_id,
        date_fields.field_no,
        case
            when date_fields.is_instant then epoch_us(date_leaves.lower_at)
            else date_leaves.lower_date - date '1970-01-01'
        end as lower_value,
        case
            when date_fields.is_instant then epoch_us(date_leaves.upper_at)
            else date_leaves.upper_date - date '1970-01-01'
        end as upper_value
    from date_leaves
    inner join date_fields
        on
            date_fields.field_name = date_leaves.field_name
            and date_fields.is_custom_field = date_leaves.is_custom_field
)

select * from final
