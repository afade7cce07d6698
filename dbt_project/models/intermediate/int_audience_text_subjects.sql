{#-
    Every text a text leaf can test, one row per (subject, field), lower-cased and trimmed,
    only for the (kind, field) pairs some leaf reads. A subject is a user (user fields) or a
    job (its title, its organisation's and position's type and custom fields: "exists a job
    whose item passes"). Missing values are absent (UNPIVOT drops nulls), empty ones dropped.
    Every row carries its user's key; a job's rows carry the job's key too (null for users),
    and its field's number (int_audience_text_fields).
-#}

{%- set builtin_fields = [
    ('idnumber', 'users.user_id'),
    ('username', 'users.username'),
    ('email', 'users.email'),
    ('firstname', 'users.first_name'),
    ('lastname', 'users.last_name'),
    ('city', 'users.city'),
    ('country', 'users.country'),
    ('lang', 'users.lang'),
    ('institution', 'users.institution'),
    ('department', 'users.department'),
    ('suspended', "case when users.status = 'suspended' then '1' else '0' end"),
] %}

with

leaves as (
    select * from {{ ref('stg_rules__audience_nodes') }}
    where node_type = 'leaf'
),

user_keys as (
    select * from {{ ref('int_audience_user_keys') }}
),

users as (
    select * from {{ ref('dim_user') }}
),

user_custom_fields as (
    select * from {{ ref('stg_hr__user_custom_fields') }}
),

jobs as (
    select * from {{ ref('int_audience_job_keys') }}
),

organisations as (
    select * from {{ ref('stg_hr__organisations') }}
),

organisation_custom_fields as (
    select * from {{ ref('stg_hr__organisation_custom_fields') }}
),

positions as (
    select * from {{ ref('stg_hr__positions') }}
),

position_custom_fields as (
    select * from {{ ref('stg_hr__position_custom_fields') }}
),

-- which built-in user fields some leaf reads: one row of booleans
builtin_fields_read as (
    select
        {%- for name, _ in builtin_fields %}
        coalesce(bool_or(field_name = '{{ name }}'), false) as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from leaves
    where leaf_kind = 'user_field' and not is_custom_field
),

-- Users carry their key from here on: joining it onto the 1M users is far cheaper than
-- onto the ~15M subject rows. Each field is lower-cased and trimmed here, once, and only
-- if some leaf reads it (else null, which the unpivot drops): after the unpivot, DuckDB
-- pushed the empty-value filter below it and computed lower(trim()) twice per row, for
-- every field (3.3 of 11.6 CPU-s of int_audience_atom_members at 1M users)
user_builtin_fields as (
    unpivot (
        select
            user_keys.user_key,
            {%- for name, expression in builtin_fields %}
            case
                when fields_read.{{ name }} then lower(trim({{ expression }}))
            end as {{ name }}{{ ',' if not loop.last }}
            {%- endfor %}
        from users
        inner join user_keys on user_keys.user_id = users.user_id
        cross join builtin_fields_read as fields_read
    )
    on columns(* exclude (user_key))
    into name field_name value value_lower
),

user_subject_fields as (
    select 'user_field' as leaf_kind, field_name, false as is_custom_field, user_key, value_lower
    from user_builtin_fields

    union all

    select
        'user_field', fields.field_name, true, user_keys.user_key,
        lower(trim(fields.field_value))
    from user_custom_fields as fields
    inner join user_keys on user_keys.user_id = fields.user_id
),

text_subjects as (
    select
        leaf_kind,
        field_name,
        is_custom_field,
        user_key,
        null::bigint as job_key,
        value_lower
    from user_subject_fields

    union all

    select 'job_title', '', false, user_key, job_key, lower(trim(full_name))
    from jobs
    where full_name is not null

    union all

    select 'organisation_type', '', false, jobs.user_key, jobs.job_key, lower(trim(o.type_id))
    from jobs
    inner join organisations as o on o.organisation_id = jobs.organisation_id
    where o.type_id is not null

    union all

    select 'position_type', '', false, jobs.user_key, jobs.job_key, lower(trim(p.type_id))
    from jobs
    inner join positions as p on p.position_id = jobs.position_id
    where p.type_id is not null

    union all

    select
        'organisation_custom_field', f.field_name, true, jobs.user_key, jobs.job_key,
        lower(trim(f.field_value))
    from jobs
    inner join organisation_custom_fields as f on f.organisation_id = jobs.organisation_id

    union all

    select
        'position_custom_field', f.field_name, true, jobs.user_key, jobs.job_key,
        lower(trim(f.field_value))
    from jobs
    inner join position_custom_fields as f on f.position_id = jobs.position_id
),

-- one row per pair some leaf reads (int_audience_text_fields): joining it keeps only those
-- and tags each text with its field's number
final as (
    select text_subjects.*, text_fields.field_no
    from text_subjects
    inner join {{ ref('int_audience_text_fields') }} as text_fields
        on
            text_fields.leaf_kind = text_subjects.leaf_kind
            and text_fields.field_name = text_subjects.field_name
            and text_fields.is_custom_field = text_subjects.is_custom_field
    where text_subjects.value_lower <> ''
)

select * from final
