-- Deleted users are never members of any audience (SPEC §4.1), frozen audiences included.
select memberships.audience_id, memberships.user_id
from {{ ref('fct_audience_membership') }} as memberships
inner join {{ ref('dim_user') }} as users on users.user_id = memberships.user_id
where users.status = 'deleted'
