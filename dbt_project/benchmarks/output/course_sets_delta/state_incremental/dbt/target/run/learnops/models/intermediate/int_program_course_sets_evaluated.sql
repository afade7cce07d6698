
        
            delete from "incremental"."intermediate"."int_program_course_sets_evaluated"
            where (
                learner_key) in (
                select (learner_key)
                from "int_program_course_sets_evaluated__dbt_tmp20261203164920132599"
            );

        
    

    insert into "incremental"."intermediate"."int_program_course_sets_evaluated" ("program_id", "path", "user_id", "opened_at", "set_id", "set_position", "group_number", "run_number", "kind", "min_time_months", "min_time_seconds", "courses_completed", "set_completed_at", "run_completed_at", "group_completed_at", "group_done_at", "path_completed_at", "current_group_number", "group_opens_at", "path_courses_completed", "row_kind", "learner_key", "input_hash")
    (
        select "program_id", "path", "user_id", "opened_at", "set_id", "set_position", "group_number", "run_number", "kind", "min_time_months", "min_time_seconds", "courses_completed", "set_completed_at", "run_completed_at", "group_completed_at", "group_done_at", "path_completed_at", "current_group_number", "group_opens_at", "path_courses_completed", "row_kind", "learner_key", "input_hash"
        from "int_program_course_sets_evaluated__dbt_tmp20261203164920132599"
    )
  