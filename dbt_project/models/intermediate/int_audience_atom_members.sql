{#-
    The members of every atom of int_audience_leaf_atoms: one row per (atom, member key), with
    repeats allowed (a user with two matching jobs appears twice; the bitsets absorb it). A
    member key is a user key, or a job key (int_audience_job_keys) for atoms whose
    member_space is 'job'. Only the subjects some leaf reads are looked at, and every atom is
    computed once however many leaves share it.
-#}

with

-- text atoms and leaves join their subjects on (field_no, value): one number for the field
text_fields as (
    select * from {{ ref('int_audience_text_fields') }}
),

atoms as (
    select distinct
        atoms.atom_id,
        atoms.atom_kind,
        atoms.leaf_kind,
        atoms.field_name,
        atoms.is_custom_field,
        atoms.atom_value,
        atoms.include_children,
        text_fields.field_no
    from {{ ref('int_audience_leaf_atoms') }} as atoms
    left join text_fields
        on
            text_fields.leaf_kind = atoms.leaf_kind
            and text_fields.field_name = atoms.field_name
            and text_fields.is_custom_field = atoms.is_custom_field
),

leaf_atoms as (
    select * from {{ ref('int_audience_leaf_atoms') }}
),

leaves as (
    select nodes.*
    from {{ ref('stg_rules__audience_nodes') }} as nodes
    semi join leaf_atoms on leaf_atoms.node_id = nodes.node_id
),

leaf_values as (
    select * from {{ ref('stg_rules__audience_node_values') }}
),

user_keys as (
    select * from {{ ref('int_audience_user_keys') }}
),

-- jobs carry their user's key (int_audience_job_keys): joining the keys onto the inputs
-- (1M rows) is far cheaper than onto the atoms' members (up to ~100M rows)
jobs as (
    select * from {{ ref('int_audience_job_keys') }}
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

-- only the completions of courses in a program some leaf names: the program content below
-- reads no others, and without program leaves (or with few) this skips reading and
-- materialising every completion (20M rows, 1.4 of 11.6 CPU-s at 1M users)
completions as (
    select * from {{ ref('stg_hr__course_completions') }}
    where course_id in (
        select program_courses.course_id
        from {{ ref('stg_rules__program_course_set_courses') }} as program_courses
        where program_courses.program_id in (
            select node_values.value
            from {{ ref('stg_rules__audience_nodes') }} as nodes
            inner join {{ ref('stg_rules__audience_node_values') }} as node_values
                using (node_id)
            where nodes.leaf_kind = 'program_completion'
        )
    )
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

present_text_subjects as (
    select field_no, user_key, job_key, value_lower
    from {{ ref('int_audience_text_subjects') }}
),

-- ---------------------------------------------------------------- shared atoms
value_members as (
    select atoms.atom_id, subjects.user_key
    from atoms
    inner join present_text_subjects as subjects
        on subjects.field_no = atoms.field_no and subjects.value_lower = atoms.atom_value
    where atoms.atom_kind = 'value'
),

-- at least one live job in the item (or anywhere below it, with include_children)
subtree_members as (
    select atoms.atom_id, jobs.user_key
    from atoms
    inner join organisation_ancestry as ancestry
        on
            ancestry.ancestor_id = atoms.atom_value
            and (atoms.include_children or ancestry.depth_below = 0)
    inner join jobs on jobs.organisation_id = ancestry.descendant_id
    where atoms.atom_kind = 'subtree' and atoms.leaf_kind = 'organisation'

    union all

    select atoms.atom_id, jobs.user_key
    from atoms
    inner join position_ancestry as ancestry
        on
            ancestry.ancestor_id = atoms.atom_value
            and (atoms.include_children or ancestry.depth_below = 0)
    inner join jobs on jobs.position_id = ancestry.descendant_id
    where atoms.atom_kind = 'subtree' and atoms.leaf_kind = 'position'
),

direct_report_members as (
    select atoms.atom_id, user_keys.user_key
    from atoms
    cross join (select distinct manager_user_id from management where depth = 1) as managers
    inner join user_keys on user_keys.user_id = managers.manager_user_id
    where atoms.atom_kind = 'direct_reports'
),

-- ---------------------------------------------------------------- per-leaf atoms
text_leaves as (
    select
        leaves.node_id,
        leaves.leaf_kind,
        coalesce(leaves.field_name, '') as field_name,
        leaves.is_custom_field,
        leaves.match_operator,
        leaves.is_complement,
        text_fields.field_no
    from leaves
    inner join leaf_atoms on leaf_atoms.node_id = leaves.node_id
    left join text_fields
        on
            text_fields.leaf_kind = leaves.leaf_kind
            and text_fields.field_name = coalesce(leaves.field_name, '')
            and text_fields.is_custom_field = leaves.is_custom_field
    where
        leaf_atoms.atom_kind = 'leaf'
        and leaves.match_operator in ('equals', 'contains', 'starts_with', 'ends_with', 'not_empty')
        -- user-field patterns are matched in int_audience_leaf_sets, on all patterns at once
        and not (
            leaves.leaf_kind = 'user_field'
            and leaves.match_operator in ('contains', 'starts_with', 'ends_with')
        )
),

-- (leaf, subject) pairs whose value matches the positive twin of the leaf's operator.
-- Equality is a hash join on the value; the pattern operators join on the field only.
text_equal_matches as (
    select
        text_leaves.node_id,
        text_leaves.leaf_kind,
        text_leaves.is_complement,
        subjects.user_key,
        subjects.job_key
    from text_leaves
    inner join leaf_values on leaf_values.node_id = text_leaves.node_id
    inner join present_text_subjects as subjects
        on
            subjects.field_no = text_leaves.field_no
            and subjects.value_lower = leaf_values.value_lower
    where text_leaves.match_operator = 'equals'
),

-- Patterns are tested once per distinct value (a job title many jobs share is tested once),
-- then the matching values are joined back to their subjects.
pattern_values as (
    select distinct subjects.field_no, subjects.value_lower
    from present_text_subjects as subjects
    semi join text_leaves
        on
            text_leaves.field_no = subjects.field_no
            and text_leaves.match_operator in ('contains', 'starts_with', 'ends_with')
),

pattern_value_matches as (
    select text_leaves.node_id, text_leaves.leaf_kind, text_leaves.is_complement, pattern_values.*
    from text_leaves
    inner join leaf_values on leaf_values.node_id = text_leaves.node_id
    inner join pattern_values on pattern_values.field_no = text_leaves.field_no
    where
        (text_leaves.match_operator = 'contains'
            and contains(pattern_values.value_lower, leaf_values.value_lower))
        or (text_leaves.match_operator = 'starts_with'
            and starts_with(pattern_values.value_lower, leaf_values.value_lower))
        or (text_leaves.match_operator = 'ends_with'
            and suffix(pattern_values.value_lower, leaf_values.value_lower))
),

text_pattern_matches as (
    select
        matches.node_id,
        matches.leaf_kind,
        matches.is_complement,
        subjects.user_key,
        subjects.job_key
    from pattern_value_matches as matches
    inner join present_text_subjects as subjects
        on subjects.field_no = matches.field_no and subjects.value_lower = matches.value_lower
),

text_present_matches as (
    select
        text_leaves.node_id,
        text_leaves.leaf_kind,
        text_leaves.is_complement,
        subjects.user_key,
        subjects.job_key
    from text_leaves
    inner join present_text_subjects as subjects on subjects.field_no = text_leaves.field_no
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
    select node_id, user_key
    from text_matches
    where leaf_kind = 'user_field'
),

-- A job-item leaf tests "exists a job whose item passes". Positive operator: the users
-- with a matching job. Negative operator: the leaf holds for users with an item-job that
-- does not match, so its stored set (is_complement) is "no item-job fails", which needs
-- all of a user's jobs: the atom holds the keys of the matching jobs, and
-- int_audience_leaf_sets takes the item-jobs outside them to their users (a few bit
-- operations per leaf instead of a group-by over every match).
job_positive_sets as (
    select node_id, user_key
    from text_matches
    where leaf_kind <> 'user_field' and not is_complement
),

job_complement_matches as (
    select node_id, job_key
    from text_matches
    where leaf_kind <> 'user_field' and is_complement
),

reports_to_sets as (
    select leaves.node_id, user_keys.user_key
    from leaves
    inner join leaf_values on leaf_values.node_id = leaves.node_id
    inner join management
        on
            management.manager_user_id = leaf_values.value
            and (not leaves.direct_only or management.depth = 1)
    inner join user_keys on user_keys.user_id = management.report_user_id
    where leaves.leaf_kind = 'reports_to'
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
    -- the bounds as one boolean, not two comparisons: DuckDB would otherwise plan a range
    -- join before the equality (10x slower)
    where coalesce(
        done.completed_at >= program_leaves.lower_at
        and done.completed_at <= program_leaves.upper_at,
        done.completed_at <= program_leaves.upper_at
    )
    group by all
),

program_sets_of_leaves as (
    select program_counts.node_id, user_keys.user_key
    from program_counts
    inner join user_keys on user_keys.user_id = program_counts.user_id
    where program_counts.match_operator = 'any' or program_counts.programs_counted = program_counts.value_count
),

-- Certification state is read from the last published run: certifications are assigned
-- through audiences too, so this run's state cannot be an input of this run's audiences.
certification_state_sets as (
    select leaves.node_id, user_keys.user_key
    from leaves
    inner join leaf_values on leaf_values.node_id = leaves.node_id
    inner join previous_certification_users as previous
        on previous.certification_id = leaf_values.value
    inner join user_keys on user_keys.user_id = previous.user_id
    where
        leaves.leaf_kind = 'certification_state'
        and list_contains(leaves.certification_states, previous.state)
),

leaf_sets as (
    select * from user_text_sets
    union all
    select * from job_positive_sets
    union all
    select * from reports_to_sets
    union all
    select * from program_sets_of_leaves
    union all
    select * from certification_state_sets
),

leaf_members as (
    select leaf_atoms.atom_id, leaf_sets.user_key
    from leaf_sets
    inner join leaf_atoms on leaf_atoms.node_id = leaf_sets.node_id

    union all

    select leaf_atoms.atom_id, matches.job_key
    from job_complement_matches as matches
    inner join leaf_atoms on leaf_atoms.node_id = matches.node_id
),

all_members as (
    select * from value_members
    union all
    select * from subtree_members
    union all
    select * from direct_report_members
    union all
    select * from leaf_members
),

final as (
    select atom_id, user_key as member_key from all_members
)

select * from final
