{#-
    Integer keys the program models join and group on instead of the text ids (program_id,
    route_key, user_id): at 1M users x 10 assignments every hash join or group-by on the
    text pair costs seconds, on one bigint far less (docs/programs.md, "Build").

    * program_key: a program's or certification's position by id among this run's rules;
    * route_number: a route's position by (program_id, route_key) among this run's routes,
      so within a program it orders the routes by key;
    * user_key: the user's stable key (int_audience_user_keys);
    * learner_key: program_key x 2^32 + user_key, one per (program, user).

    Program keys and route numbers are this run's only (the rules may change between runs):
    they never leave the build's intermediates and the marts' build columns. Only the
    incremental course-set tables keep learner keys from one run to the next, and their
    input_hash includes the program key, so a learner whose key moved is evaluated again
    (macros/incremental_course_set_progress.sql).
-#}

{#- One row per program: program_id, program_key (and the other columns of the staging model). -#}
{% macro program_keys() -%}
    select
        programs.*,
        (row_number() over (order by programs.program_id))::bigint as program_key
    from {{ ref('stg_rules__programs') }} as programs
{%- endmacro %}


{#- One row per route: the staging columns, route_number, and program_key of its program. -#}
{% macro route_numbers() -%}
    select
        routes.*,
        (row_number() over (order by routes.program_id, routes.route_key))::integer
            as route_number,
        program_keys.program_key
    from {{ ref('stg_rules__program_routes') }} as routes
    inner join ({{ program_keys() }}) as program_keys
        on program_keys.program_id = routes.program_id
{%- endmacro %}


{#- The learner key of a program key and a user key (both expressions). -#}
{% macro learner_key(program_key, user_key) -%}
    ({{ program_key }} * 4294967296 + {{ user_key }})
{%- endmacro %}


{#- The program key of a learner key. -#}
{% macro learner_program_key(learner_key) -%}
    ({{ learner_key }} // 4294967296)
{%- endmacro %}
