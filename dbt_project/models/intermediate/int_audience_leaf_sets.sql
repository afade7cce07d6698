{{ config(materialized='table') }}

{#-
    The stored set of every leaf of every audience rule tree (docs/audiences.md, "Leaf
    semantics"), all audiences at once: one row per (leaf node, user) in the set. A leaf
    holds for a user when the user is in its set, or - for a complement leaf - when they are
    not. member_of / not_member_of leaves are evaluated stage by stage in
    int_audience_memberships_evaluated, not here.

    Rule values arrive as rows of stg_rules__audience_node_values and are only ever joined
    or compared: nothing an admin writes becomes SQL text.
-#}

with

leaves as (
    select * from {{ ref('stg_rules__audience_nodes') }}
    where node_type = 'leaf'
),

leaf_values as (
    select * from {{ ref('stg_rules__audience_node_values') }}
),

users as (
    select * from {{ ref('dim_user') }}
),

user_custom_fields as (
    select * from {{ ref('stg_hr__user_custom_fields') }}
),

jobs as (
    select * from {{ ref('dim_job_assignment') }}
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

organisation_ancestry as (
    select * from {{ ref('bdg_organisation_ancestry') }}
),

position_ancestry as (
    select * from {{ ref('bdg_position_ancestry') }}
),

management as (
    select * from {{ ref('bdg_management') }}
),

completions as (
    select * from {{ ref('stg_hr__course_completions') }}
),

courses as (
    select * from {{ ref('stg_hr__courses') }}
),

program_sets as (
    select * from {{ ref('stg_rules__program_course_sets') }}
),

program_courses as (
    select * from {{ ref('stg_rules__program_course_set_courses') }}
),

previous_certification_users as (
    select * from {{ ref('stg_learnops__previous_certification_users') }}
),

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

-- ---------------------------------------------------------------- text subjects
-- Every text a text leaf can test, one row per (subject, field), lower-cased and trimmed;
-- missing values are absent (UNPIVOT drops nulls), empty ones are dropped below.
-- A subject is a user (user fields) or a job (its title, its organisation's and
-- position's type and custom fields: "exists a job whose item passes").

user_builtin_fields as (
    unpivot (
        select
            user_id,
            user_id as idnumber,
            username,
            email,
            first_name as firstname,
            last_name as lastname,
            city,
            country,
            lang,
            institution,
            department,
            case when status = 'suspended' then '1' else '0' end as suspended
        from users
    )
    on columns(* exclude (user_id))
    into name field_name value field_value
),

text_subjects as (
    select
        'user_field' as leaf_kind,
        field_name,
        false as is_custom_field,
        user_id,
        null::varchar as job_id,
        lower(trim(field_value)) as value_lower
    from user_builtin_fields

    union all

    select 'user_field', field_name, true, user_id, null, lower(trim(field_value))
    from user_custom_fields

    union all

    select 'job_title', '', false, user_id, job_id, lower(trim(full_name))
    from jobs
    where full_name is not null

    union all

    select 'organisation_type', '', false, jobs.user_id, jobs.job_id, lower(trim(o.type_id))
    from jobs
    inner join organisations as o on o.organisation_id = jobs.organisation_id
    where o.type_id is not null

    union all

    select 'position_type', '', false, jobs.user_id, jobs.job_id, lower(trim(p.type_id))
    from jobs
    inner join positions as p on p.position_id = jobs.position_id
    where p.type_id is not null

    union all

    select
        'organisation_custom_field', f.field_name, true, jobs.user_id, jobs.job_id,
        lower(trim(f.field_value))
    from jobs
    inner join organisation_custom_fields as f on f.organisation_id = jobs.organisation_id

    union all

    select
        'position_custom_field', f.field_name, true, jobs.user_id, jobs.job_id,
        lower(trim(f.field_value))
    from jobs
    inner join position_custom_fields as f on f.position_id = jobs.position_id
),

present_text_subjects as (
    select * from text_subjects
    where value_lower <> ''
),

text_leaves as (
    select
        node_id,
        leaf_kind,
        coalesce(field_name, '') as field_name,
        is_custom_field,
        match_operator,
        is_complement
    from leaves
    where match_operator in ('equals', 'contains', 'starts_with', 'ends_with', 'not_empty')
),

-- (leaf, subject) pairs whose value matches the positive twin of the leaf's operator.
-- Equality is a hash join on the value; the pattern operators join on the field only.
-- (values are distinct per leaf after lower-casing: flows/rules/tables.py)
text_equal_matches as (
    select
        text_leaves.node_id,
        text_leaves.leaf_kind,
        text_leaves.is_complement,
        subjects.user_id,
        subjects.job_id
    from text_leaves
    inner join leaf_values on leaf_values.node_id = text_leaves.node_id
    inner join present_text_subjects as subjects
        on
            subjects.leaf_kind = text_leaves.leaf_kind
            and subjects.field_name = text_leaves.field_name
            and subjects.is_custom_field = text_leaves.is_custom_field
            and subjects.value_lower = leaf_values.value_lower
    where text_leaves.match_operator = 'equals'
),

text_pattern_matches as (
    select distinct
        text_leaves.node_id,
        text_leaves.leaf_kind,
        text_leaves.is_complement,
        subjects.user_id,
        subjects.job_id
    from text_leaves
    inner join leaf_values on leaf_values.node_id = text_leaves.node_id
    inner join present_text_subjects as subjects
        on
            subjects.leaf_kind = text_leaves.leaf_kind
            and subjects.field_name = text_leaves.field_name
            and subjects.is_custom_field = text_leaves.is_custom_field
    where
        (text_leaves.match_operator = 'contains'
            and contains(subjects.value_lower, leaf_values.value_lower))
        or (text_leaves.match_operator = 'starts_with'
            and starts_with(subjects.value_lower, leaf_values.value_lower))
        or (text_leaves.match_operator = 'ends_with'
            and suffix(subjects.value_lower, leaf_values.value_lower))
),

text_present_matches as (
    select
        text_leaves.node_id,
        text_leaves.leaf_kind,
        text_leaves.is_complement,
        subjects.user_id,
        subjects.job_id
    from text_leaves
    inner join present_text_subjects as subjects
        on
            subjects.leaf_kind = text_leaves.leaf_kind
            and subjects.field_name = text_leaves.field_name
            and subjects.is_custom_field = text_leaves.is_custom_field
    where text_leaves.match_operator = 'not_empty'
),

text_matches as (
    select * from text_equal_matches
    union all
    select * from text_pattern_matches
    union all
    select * from text_present_matches
),

user_text_sets as (
    select distinct node_id, user_id
    from text_matches
    where leaf_kind = 'user_field'
),

-- ---------------------------------------------------------------- job item leaves
-- A job "has an item" for a kind when it has an organisation (organisation_*), a position
-- (position_*); every job has a title. Positive operator: users with a matching job.
-- Negative operator: the leaf holds for users with a job whose item does not match, stored
-- as the complement: users with no job that has an item, plus users all of whose such jobs
-- match.

item_kinds as (
    select * from (
        values
        ('job_title', 'job'),
        ('organisation_type', 'organisation'),
        ('organisation_custom_field', 'organisation'),
        ('position_type', 'position'),
        ('position_custom_field', 'position')
    ) as kinds (leaf_kind, item)
),

user_item_jobs as (
    select user_id, item, count(*) as jobs_with_item
    from jobs
    cross join (values ('job'), ('organisation'), ('position')) as items (item)
    where
        item = 'job'
        or (item = 'organisation' and organisation_id is not null)
        or (item = 'position' and position_id is not null)
    group by user_id, item
),

users_without_item as (
    select users.user_id, items.item
    from users
    cross join (values ('job'), ('organisation'), ('position')) as items (item)
    anti join user_item_jobs
        on user_item_jobs.user_id = users.user_id and user_item_jobs.item = items.item
),

job_item_leaves as (
    select text_leaves.*, item_kinds.item
    from text_leaves
    inner join item_kinds on item_kinds.leaf_kind = text_leaves.leaf_kind
),

job_positive_sets as (
    select distinct matches.node_id, matches.user_id
    from text_matches as matches
    inner join job_item_leaves on job_item_leaves.node_id = matches.node_id
    where not job_item_leaves.is_complement
),

job_matches_per_user as (
    select matches.node_id, matches.user_id, count(distinct matches.job_id) as jobs_matched
    from text_matches as matches
    inner join job_item_leaves on job_item_leaves.node_id = matches.node_id
    where job_item_leaves.is_complement
    group by matches.node_id, matches.user_id
),

job_complement_sets as (
    -- users all of whose jobs with an item match
    select per_user.node_id, per_user.user_id
    from job_matches_per_user as per_user
    inner join job_item_leaves on job_item_leaves.node_id = per_user.node_id
    inner join user_item_jobs
        on
            user_item_jobs.user_id = per_user.user_id
            and user_item_jobs.item = job_item_leaves.item
    where per_user.jobs_matched = user_item_jobs.jobs_with_item

    union all

    -- users with no job that has an item
    select job_item_leaves.node_id, users_without_item.user_id
    from job_item_leaves
    inner join users_without_item on users_without_item.item = job_item_leaves.item
    where job_item_leaves.is_complement
),

-- ---------------------------------------------------------------- dates
-- Every date a date leaf can test, one row per (user, field, value): instants (access) are
-- compared with the instant bounds, calendar dates (jobs, custom dates) with the date
-- bounds; a user with two jobs has two job start dates, and either may match.
date_subjects as (
    select 'first_access' as field_name, false as is_custom_field, user_id,
        first_access_at as value_at, null::date as value_date
    from users
    where first_access_at is not null

    union all

    select 'last_access', false, user_id, last_access_at, null
    from users
    where last_access_at is not null

    union all

    select 'job_start_date', false, user_id, null, start_date
    from jobs
    where start_date is not null

    union all

    select 'job_end_date', false, user_id, null, end_date
    from jobs
    where end_date is not null

    union all

    select field_name, true, user_id, null, try_cast(field_value as date)
    from user_custom_fields
    where try_cast(field_value as date) is not null
),

date_sets as (
    select distinct date_leaves.node_id, date_subjects.user_id
    from leaves as date_leaves
    inner join date_subjects
        on
            date_subjects.field_name = date_leaves.field_name
            and date_subjects.is_custom_field = date_leaves.is_custom_field
    where
        date_leaves.leaf_kind = 'date_field'
        -- one boolean per kind of value (see course_counts for why not plain comparisons)
        and coalesce(date_subjects.value_at >= date_leaves.lower_at, true)
        and coalesce(date_subjects.value_at <= date_leaves.upper_at, true)
        and coalesce(date_subjects.value_date >= date_leaves.lower_date, true)
        and coalesce(date_subjects.value_date <= date_leaves.upper_date, true)
),

-- ---------------------------------------------------------------- hierarchies
-- At least one live job in the chosen items (or anywhere below them with include_children).
hierarchy_sets as (
    select distinct leaves.node_id, jobs.user_id
    from leaves
    inner join leaf_values on leaf_values.node_id = leaves.node_id
    inner join organisation_ancestry as ancestry
        on
            ancestry.ancestor_id = leaf_values.value
            and (leaves.include_children or ancestry.depth_below = 0)
    inner join jobs on jobs.organisation_id = ancestry.descendant_id
    where leaves.leaf_kind = 'organisation'

    union all

    select distinct leaves.node_id, jobs.user_id
    from leaves
    inner join leaf_values on leaf_values.node_id = leaves.node_id
    inner join position_ancestry as ancestry
        on
            ancestry.ancestor_id = leaf_values.value
            and (leaves.include_children or ancestry.depth_below = 0)
    inner join jobs on jobs.position_id = ancestry.descendant_id
    where leaves.leaf_kind = 'position'
),

-- ---------------------------------------------------------------- management
direct_managers as (
    select distinct manager_user_id as user_id
    from management
    where depth = 1
),

management_sets as (
    select leaves.node_id, direct_managers.user_id
    from leaves
    cross join direct_managers
    where leaves.leaf_kind = 'has_direct_reports'

    union all

    select distinct leaves.node_id, management.report_user_id
    from leaves
    inner join leaf_values on leaf_values.node_id = leaves.node_id
    inner join management
        on
            management.manager_user_id = leaf_values.value
            and (not leaves.direct_only or management.depth = 1)
    where leaves.leaf_kind = 'reports_to'
),

-- ---------------------------------------------------------------- learning
-- A listed course counts when one of the user's completions of it lies in the leaf's
-- bounds (upper bound at most the as-of, set by the flow); all = every listed course
-- counts, any = at least one (not_all and none are their complements).
course_leaves as (
    select
        leaves.node_id,
        leaves.match_operator,
        leaves.value_count,
        leaves.lower_at,
        leaves.upper_at,
        leaf_values.value as course_id
    from leaves
    inner join leaf_values on leaf_values.node_id = leaves.node_id
    where leaves.leaf_kind = 'course_completion'
),

course_counts as (
    select
        course_leaves.node_id,
        completions.user_id,
        course_leaves.match_operator,
        course_leaves.value_count,
        count(distinct completions.course_id) as courses_counted
    from course_leaves
    inner join completions on completions.course_id = course_leaves.course_id
    -- the bounds as one boolean, not two comparisons: DuckDB would otherwise plan a range
    -- join of every completion with every leaf before the equality (10x slower)
    where coalesce(
        completions.completed_at >= course_leaves.lower_at
        and completions.completed_at <= course_leaves.upper_at,
        completions.completed_at <= course_leaves.upper_at
    )
    group by all
),

course_sets as (
    select node_id, user_id
    from course_counts
    where match_operator = 'any' or courses_counted = value_count
),

-- Program completion in an audience rule is the completion of the program's content, from
-- the course completions of this run, whether or not the user is assigned to it (programs
-- are assigned through audiences, so their assignments cannot feed an audience). Optional
-- sets do not delay it. Only programs that some leaf names are evaluated.
program_leaves as (
    select
        leaves.node_id,
        leaves.match_operator,
        leaves.value_count,
        leaves.lower_at,
        leaves.upper_at,
        leaf_values.value as program_id
    from leaves
    inner join leaf_values on leaf_values.node_id = leaves.node_id
    where leaves.leaf_kind = 'program_completion'
),

program_content_learners as (
    select distinct
        program_courses.program_id,
        program_courses.path,
        completions.user_id,
        null::timestamp as counted_from,
        '-infinity'::timestamp as opened_at,
        run_context.as_of
    from program_courses
    semi join program_leaves on program_leaves.program_id = program_courses.program_id
    inner join completions on completions.course_id = program_courses.course_id
    cross join run_context
    where program_courses.path = 'primary'
),

program_content_progress as (
    {{ course_set_progress(
        'program_content_learners', 'program_sets', 'program_courses', 'completions', 'courses'
    ) }}
),

program_content_completions as (
    select distinct program_id, user_id, path_completed_at as completed_at
    from program_content_progress
    where path_completed_at is not null
),

program_counts as (
    select
        program_leaves.node_id,
        done.user_id,
        program_leaves.match_operator,
        program_leaves.value_count,
        count(*) as programs_counted
    from program_leaves
    inner join program_content_completions as done
        on done.program_id = program_leaves.program_id
    where coalesce(
        done.completed_at >= program_leaves.lower_at
        and done.completed_at <= program_leaves.upper_at,
        done.completed_at <= program_leaves.upper_at
    )
    group by all
),

program_sets_of_leaves as (
    select node_id, user_id
    from program_counts
    where match_operator = 'any' or programs_counted = value_count
),

-- Certification state is read from the last published run: certifications are assigned
-- through audiences too, so this run's state cannot be an input of this run's audiences.
certification_state_sets as (
    select distinct leaves.node_id, previous.user_id
    from leaves
    inner join leaf_values on leaf_values.node_id = leaves.node_id
    inner join previous_certification_users as previous
        on previous.certification_id = leaf_values.value
    where
        leaves.leaf_kind = 'certification_state'
        and list_contains(leaves.certification_states, previous.state)
),

learning_sets as (
    select * from course_sets
    union all
    select * from program_sets_of_leaves
    union all
    select * from certification_state_sets
),

-- Each family is distinct per (node, user) and every leaf belongs to one family, so the
-- families are concatenated, never de-duplicated again.
final as (
    select * from user_text_sets
    union all
    select * from job_positive_sets
    union all
    select * from job_complement_sets
    union all
    select * from date_sets
    union all
    select * from hierarchy_sets
    union all
    select * from management_sets
    union all
    select * from learning_sets
)

select * from final
