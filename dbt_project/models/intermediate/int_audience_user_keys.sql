{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=false,
    )
}}

{#-
    A stable integer key per user, for the audience bitsets (flows/audience_sets.py): bit k
    of a set is the user whose key is k. Keys are given once, in user_id order, and never
    change or get reused, so a set stored by an earlier run still means the same users.
    Keys are dense: 0 .. (number of users ever seen - 1).
-#}

with

users as (
    select user_id from {{ ref('dim_user') }}
),

{% if is_incremental() %}
new_users as (
    select users.user_id
    from users
    anti join {{ this }} as known on known.user_id = users.user_id
),

first_free_key as (
    select coalesce(max(user_key) + 1, 0) as next_key from {{ this }}
),
{% else %}
new_users as (
    select user_id from users
),

first_free_key as (
    select 0::bigint as next_key
),
{% endif %}

final as (
    select
        new_users.user_id,
        first_free_key.next_key + row_number() over (order by new_users.user_id) - 1 as user_key
    from new_users
    cross join first_free_key
)

select * from final
