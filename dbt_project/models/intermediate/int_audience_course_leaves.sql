{#-
    Course-completion leaves as ranges: one row per (leaf, listed course), the course as a
    number shared with int_audience_course_completions, and the leaf's bounds in
    microseconds since 1970. The upper bound is never after the as-of (set by the flow), so
    completions after it never count and a replay sees what the run saw.
-#}

with

course_leaves as (
    select * from {{ ref('stg_rules__audience_nodes') }}
    where node_type = 'leaf' and leaf_kind = 'course_completion'
),

leaf_values as (
    select * from {{ ref('stg_rules__audience_node_values') }}
),

listed as (
    select course_leaves.node_id, leaf_values.value as course_id
    from course_leaves
    inner join leaf_values on leaf_values.node_id = course_leaves.node_id
),

course_numbers as (
    select course_id, dense_rank() over (order by course_id) - 1 as course_no
    from (select distinct course_id from listed)
),

final as (
    select
        listed.node_id,
        course_numbers.course_no,
        course_numbers.course_id,
        epoch_us(course_leaves.lower_at) as lower_us,
        epoch_us(course_leaves.upper_at) as upper_us
    from listed
    inner join course_numbers on course_numbers.course_id = listed.course_id
    inner join course_leaves on course_leaves.node_id = listed.node_id
)

select * from final
