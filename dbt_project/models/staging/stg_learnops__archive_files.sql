with

source as (
    select * from {{ source('learnops', 'archive_file') }}
),

renamed as (
    select
        run_id,
        element,
        file,
        sha256,
        size_bytes,
        stored_path
    from source
)

select * from renamed
