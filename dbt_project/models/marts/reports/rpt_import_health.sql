{#-
    One row per run, element and reject reason (reason_code 'none' for a file with no
    rejected row): rows read and rejected per element file, and how many rows each reason
    rejected. No person or organisation is its subject: only scope `all` may send it (the
    data team's report).
-#}

with

runs as (
    select run_id, as_of from {{ ref('stg_learnops__runs') }}
),

files as (
    select * from {{ ref('stg_learnops__import_files') }}
),

rejects as (
    select run_id, element, reason_code, count(*) as reason_count
    from {{ ref('stg_learnops__import_rejects') }}
    group by run_id, element, reason_code
),

final as (
    select
        files.run_id,
        runs.as_of,
        files.element,
        files.file,
        files.status as file_status,
        files.rows_read,
        files.rows_rejected,
        cast(
            case when files.rows_read > 0 then files.rows_rejected / files.rows_read end as double
        ) as reject_share,
        coalesce(rejects.reason_code, 'none') as reason_code,
        cast(coalesce(rejects.reason_count, 0) as bigint) as reason_count
    from files
    inner join runs
        on runs.run_id = files.run_id
    left join rejects
        on
            rejects.run_id = files.run_id
            and rejects.element = files.element
)

select * from final
