{#-
    Every date a date leaf reads, as numbers (units as in int_audience_date_leaves): one row
    per (field, user key, value), only for the fields some leaf names. A user with two jobs
    has two job start dates, and either may match; a missing date never matches.
-#}

with

date_fields as (
    select distinct field_no, nodes.field_name, nodes.is_custom_field
    from {{ ref('int_audience_date_leaves') }} as date_leaves
    inner join {{ ref('stg_rules__audience_nodes') }} as nodes using (node_id)
),

users as (
    select * from {{ ref('dim_user') }}
),

jobs as (
    select * from {{ ref('dim_job_assignment') }}
),

user_custom_fields as (
    select * from {{ ref('stg_hr__user_custom_fields') }}
),

user_keys as (
    select * from {{ ref('int_audience_user_keys') }}
),

date_values as (
    select 'first_access' as field_name, false as is_custom_field, user_id,
        epoch_us(first_access_at) as value
    from users
    where first_access_at is not null

    union all

    select 'last_access', false, user_id, epoch_us(last_access_at)
    from users
    where last_access_at is not null

    union all

    select 'job_start_date', false, user_id, start_date - date '1970-01-01'
    from jobs
    where start_date is not null

    union all

    select 'job_end_date', false, user_id, end_date - date '1970-01-01'
    from jobs
    where end_date is not null

    union all

    select field_name, true, user_id, try_cast(field_value as date) - date '1970-01-01'
    from user_custom_fields
    where try_cast(field_value as date) is not null
),

final as (
    select date_fields.field_no, user_keys.user_key, date_values.value
    from date_values
    inner join date_fields
        on
            date_fields.field_name = date_values.field_name
            and date_fields.is_custom_field = date_values.is_custom_field
    inner join user_keys on user_keys.user_id = date_values.user_id
)

select * from final
