"""DDL of the tables the Python stages write and dbt reads as sources.

Two schemas live beside dbt's output in the warehouse file:

* ``learnops`` - run bookkeeping: the run log, the current run's context (as-of), rejected
  feed rows, per-file import results and the archive index. Only appended to.
* ``hr`` - the *live state* HR Import maintains: the mirror of the HR and learning systems
  after full/delta semantics, removals and rejects were applied. dbt derives every contract
  table (``dim_*``, ``bdg_*``, history) from it.
* ``rules`` - the admins' rules as data (``flows/rules/tables.py`` replaces their rows every
  run; docs/audiences.md describes the columns).

Every statement is idempotent (``create ... if not exists``) so a new warehouse and an old
one are brought to the same shape by the same call. There are no primary-key constraints:
the import replaces each live table set-wise every run (DuckDB's ART indexes make bulk
rewrites slower and refuse some updates), and uniqueness is asserted by dbt tests instead.
"""

from __future__ import annotations

import duckdb

BOOKKEEPING_DDL = """
create schema if not exists learnops;

-- One row per pipeline run, written by the flow (status running -> succeeded/failed).
create table if not exists learnops.run_log (
    run_id       varchar,
    as_of        timestamp not null,      -- UTC
    started_at   timestamp not null,      -- UTC wall clock
    finished_at  timestamp,
    status       varchar not null,        -- running | succeeded | failed
    message      varchar,
    summary      json                     -- per-element counts, for humans and BI tools
);

-- Exactly one row while a run builds: the run dbt is building for. dbt reads the as-of
-- from here (not from --vars) so that partial parsing survives from run to run.
create table if not exists learnops.run_context (
    run_id  varchar not null,
    as_of   timestamp not null
);
-- is_baseline: the first run on this warehouse or `--baseline` (notifications are recorded
-- `suppressed`, SPEC §6); site_timezone: the zone local days are counted in.
alter table learnops.run_context add column if not exists is_baseline boolean default false;
alter table learnops.run_context add column if not exists site_timezone varchar default 'UTC';
-- previous_run_id / previous_as_of: the last published run (null on the first run). The
-- notification models derive only what happened in (previous as-of, as-of] from them.
alter table learnops.run_context add column if not exists previous_run_id varchar;
alter table learnops.run_context add column if not exists previous_as_of timestamp;

-- Every rejected feed row of every run, with its raw content.
create table if not exists learnops.import_reject_log (
    run_id       varchar not null,
    element      varchar not null,        -- file stem: org, pos, user, jobassignment, ...
    file         varchar not null,        -- file name as read
    row_number   bigint not null,         -- line where the record starts; header = 1
    record_id    varchar,                 -- key; jobassignment: <useridnumber>/<idnumber>
    reason_code  varchar not null,        -- stable, e.g. user.email_invalid
    reason       varchar not null,        -- what is wrong and what to do
    raw          json not null            -- the row as read, column -> text
);

-- What happened to each element's file in each run.
create table if not exists learnops.import_file_log (
    run_id         varchar not null,
    element        varchar not null,
    file           varchar,
    status         varchar not null,      -- imported | missing | unchanged
    mode           varchar,               -- full | delta
    rows_read      bigint not null default 0,
    rows_accepted  bigint not null default 0,
    rows_rejected  bigint not null default 0,
    added          bigint not null default 0,
    updated        bigint not null default 0,
    removed        bigint not null default 0,
    sha256         varchar,               -- of the file
    input_hash     varchar                -- of the file, its settings and the site timezone
);

-- Scheduled reports sent or skipped (report_delivery, SPEC §5): a copy of the report
-- ledger <state>/reports.duckdb, folded in by the sender and before every build.
create table if not exists learnops.report_delivery_log (
    report_id        varchar not null,
    recipient_email  varchar not null,      -- lower-cased
    period_start     timestamp not null,    -- the schedule instant the period starts at (UTC)
    status           varchar not null,      -- sent | failed | skipped_empty
    row_count        bigint,
    sent_at          timestamp,             -- wall clock (UTC)
    message_id       varchar,
    attempts         integer,
    last_error       varchar
);

-- Content-addressed archive of every input file, per run that read it.
create table if not exists learnops.archive_file (
    run_id      varchar not null,
    element     varchar not null,
    file        varchar not null,
    sha256      varchar not null,
    size_bytes  bigint not null,
    stored_path varchar not null          -- relative to the archive directory
);
"""

LIVE_STATE_DDL = """
create schema if not exists hr;

create table if not exists hr.user (
    user_id          varchar,
    username         varchar not null,
    email            varchar,
    first_name       varchar not null,
    last_name        varchar not null,
    city             varchar,
    country          varchar,
    lang             varchar,
    timezone         varchar,
    institution      varchar,
    department       varchar,
    is_suspended     boolean not null default false,  -- suspended=1 in the feed
    email_stop       boolean not null default false,
    status           varchar not null,                -- active | suspended | deleted
    removed_reason   varchar,                         -- why the status is not active
    time_modified    bigint,
    first_seen_run_id varchar not null
);

create table if not exists hr.user_custom_field (
    user_id     varchar not null,
    field_name  varchar not null,     -- without the customfield_ prefix
    value       varchar
);

create table if not exists hr.organisation (
    organisation_id  varchar,
    name             varchar not null,
    short_name       varchar,
    description      varchar,
    framework_id     varchar,
    parent_id        varchar,
    type_id          varchar,
    time_modified    bigint,
    first_seen_run_id varchar not null
);

create table if not exists hr.organisation_custom_field (
    organisation_id  varchar not null,
    field_name       varchar not null,
    value            varchar
);

create table if not exists hr.position (
    position_id      varchar,
    name             varchar not null,
    short_name       varchar,
    description      varchar,
    framework_id     varchar,
    parent_id        varchar,
    type_id          varchar,
    time_modified    bigint,
    first_seen_run_id varchar not null
);

create table if not exists hr.position_custom_field (
    position_id  varchar not null,
    field_name   varchar not null,
    value        varchar
);

create table if not exists hr.competency (
    competency_id       varchar,
    name                varchar not null,
    short_name          varchar,
    description         varchar,
    framework_id        varchar,
    parent_id           varchar,
    type_id             varchar,
    aggregation_method  varchar,
    time_modified       bigint,
    first_seen_run_id   varchar not null
);

create table if not exists hr.job_assignment (
    user_id            varchar not null,
    job_id             varchar not null,
    full_name          varchar,
    start_date         date,
    end_date           date,
    organisation_id    varchar,
    position_id        varchar,
    manager_user_id    varchar,
    manager_job_id     varchar,          -- as given in the feed; null = the manager's first job
    appraiser_user_id  varchar,
    time_modified      bigint,
    first_seen_order   bigint not null,  -- run ordinal * 1e10 + line: "first job" = smallest
    first_seen_run_id  varchar not null
);

create table if not exists hr.course (
    course_id  varchar,
    name       varchar not null,
    score      integer
);

create table if not exists hr.course_completion (
    user_id       varchar not null,
    course_id     varchar not null,
    completed_at  timestamp not null,    -- UTC
    grade         double,
    first_seen_run_id varchar not null
);

create table if not exists hr.user_access (
    user_id          varchar,
    first_access_at  timestamp,
    last_access_at   timestamp
);
"""


RULES_DDL = """
create schema if not exists rules;

create table if not exists rules.audience (
    audience_id          varchar not null,
    name                 varchar not null,
    kind                 varchar not null,   -- static | dynamic
    stage                integer not null,   -- member_of order: 0 references no audience
    root_node_id         bigint,             -- null: static, or dynamic without rules
    active_from          date,
    active_until         date,
    is_in_window         boolean not null,   -- the run's as-of day is inside the window
    add_members          boolean not null,
    remove_members       boolean not null,
    is_broken            boolean not null,
    broken_reason        varchar,
    broken_since_run_id  varchar,
    definition           json not null,      -- the audience as written, for explain and BI
    source_file          varchar not null,
    source_line          integer
);

create table if not exists rules.audience_node (
    node_id              bigint not null,    -- unique across audiences
    audience_id          varchar not null,
    parent_node_id       bigint,
    depth                integer not null,   -- root = 1
    child_position       integer not null,
    node_type            varchar not null,   -- all | any | not | leaf
    leaf_kind            varchar,
    field_name           varchar,            -- without the custom: prefix
    is_custom_field      boolean,
    operator             varchar,            -- as written
    match_operator       varchar,            -- the positive twin SQL evaluates
    is_complement        boolean not null,   -- the stored set is the complement
    positive_children    integer,
    complement_children  integer,
    include_children     boolean,
    direct_only          boolean,
    has_direct_reports   boolean,
    match                varchar,            -- all | any | not_all | none
    lower_at             timestamp,          -- inclusive instant bounds (UTC)
    upper_at             timestamp,
    lower_date           date,               -- the same bounds for date-valued fields
    upper_date           date,
    value_count          integer
);

-- added after the first release of the table: older warehouses get the column here
alter table rules.audience_node add column if not exists certification_states varchar[];

create table if not exists rules.audience_node_value (
    node_id      bigint not null,
    value        varchar not null,
    value_lower  varchar not null
);

create table if not exists rules.audience_static_member (
    audience_id  varchar not null,
    user_id      varchar not null
);

-- Programs and certifications (docs/programs.md). Periods are (months, seconds): years and
-- months as calendar months, weeks, days and hours as seconds.
create table if not exists rules.program (
    program_id                 varchar not null,
    name                       varchar not null,
    kind                       varchar not null,   -- program | certification
    active_period_months       integer,            -- certifications only
    active_period_seconds      bigint,
    window_period_months       integer,
    window_period_seconds      bigint,
    min_active_period_months   integer,            -- expiry_method fixed only
    min_active_period_seconds  bigint,
    expiry_method              varchar,            -- expiry_date | completion_date | fixed
    minimum_time_seconds       bigint not null,    -- primary path: sum of each group's largest
    minimum_time_months        integer not null,
    exception_default          varchar not null,   -- open | assign | realistic_due_date | dismiss
    is_broken                  boolean not null,
    broken_reason              varchar,
    broken_since_run_id        varchar,
    definition                 json not null,
    source_file                varchar not null,
    source_line                integer
);

create table if not exists rules.program_course_set (
    program_id        varchar not null,
    path              varchar not null,            -- primary | recertification
    set_id            varchar not null,
    set_position      integer not null,            -- 1-based, in content order
    group_number      integer not null,            -- 1-based; `then` starts the next group
    run_number        integer not null,            -- 1-based within the group; `or` starts the next
    kind              varchar not null,            -- all | any | some | optional
    min_courses       integer not null,            -- some only (0 otherwise)
    min_score         integer not null,
    min_time_months   integer not null,
    min_time_seconds  bigint not null,
    course_count      integer not null
);

create table if not exists rules.program_course_set_course (
    program_id  varchar not null,
    path        varchar not null,
    set_id      varchar not null,
    course_id   varchar not null
);

create table if not exists rules.program_route (
    program_id       varchar not null,
    route_key        varchar not null,             -- stable identity across runs
    -- organisation | position | audience | manager | users | group
    route_kind       varchar not null,
    include_children boolean not null,
    manager_user_id  varchar,
    manager_job_id   varchar,
    manager_scope    varchar,                      -- direct | all_below
    due_kind         varchar not null,             -- none | fixed | relative
    due_fixed_at     timestamp,                    -- end of the day, site timezone, as UTC
    -- first_access | assignment | job_start | position_assigned | course_completion |
    -- program_completion | custom_field
    due_base         varchar,
    due_base_ref     varchar,                      -- the position, course, program or field
    due_months       integer,
    due_seconds      bigint
);

create table if not exists rules.program_route_target (
    program_id  varchar not null,
    route_key   varchar not null,
    target_id   varchar not null                   -- organisation, position, audience or user id
);

create table if not exists rules.program_exception_resolution (
    program_id  varchar not null,
    user_id     varchar not null,
    resolution  varchar not null                   -- open | assign | realistic_due_date | dismiss
);

-- Notifications (rules/notifications.yaml, docs/rules.md). Exactly one settings row, the
-- defaults when the file is missing; no notification rows then.
create table if not exists rules.notification_setting (
    sender_address         varchar,                -- null: no file, or nothing to send
    sender_name            varchar,
    reply_to               varchar,
    admins                 varchar[] not null,     -- recipients of `admins`
    max_per_run            integer not null,       -- mass-send guard
    max_lateness_months    integer not null,
    max_lateness_seconds   bigint not null,
    per_user_daily_cap     integer,                -- null: no cap
    manager_digest         boolean not null,
    relay_rate_per_minute  integer,                -- null: unlimited
    alert_addresses        varchar[] not null,     -- run alerts
    alert_reject_share     double not null         -- share of an element's rows rejected
);

create table if not exists rules.notification (
    notification_id  varchar not null,
    -- one of the 15 triggers of SPEC §6 (flows/rules/notifications.py TRIGGERS)
    trigger          varchar not null,
    -- null for event triggers (and certification_window_open / _expired without offset);
    -- before the anchor for program_due, courseset_due, certification_expiring, else after
    offset_months    integer,
    offset_seconds   bigint,
    scope_kind       varchar not null,             -- all | audiences | programs | certifications
    template         varchar not null,             -- base name in notifications/templates/
    enabled          boolean not null,
    to_learner       boolean not null,
    to_managers      boolean not null,
    to_admins        boolean not null,             -- settings.admins
    line             integer                       -- of its id in notifications.yaml
);

create table if not exists rules.notification_scope (
    notification_id  varchar not null,
    object_id        varchar not null              -- audience, program or certification id
);

create table if not exists rules.notification_address (
    notification_id  varchar not null,
    email            varchar not null              -- a fixed `{address: ...}` recipient
);
"""

#: The last published program state, set aside before each build so the build can keep
#: assignment dates, never lower a due date and keep exceptions: view -> (the published mart,
#: the columns the view shows, as the empty table of a first run declares them). The mart
#: itself is renamed to ``<mart>__previous`` (flows/rules/program_tables.py), which costs
#: nothing, where copying its ten million rows at 1M users cost 10 s of every run.
PREVIOUS_STATE: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "previous_program_route_user": (
        "fct_program_assignment_route",
        (
            ("program_id", "varchar"),
            ("route_key", "varchar"),
            ("user_id", "varchar"),
            ("assigned_at", "timestamp"),
        ),
    ),
    "previous_certification_user": (
        "fct_certification_user",
        (
            ("certification_id", "varchar"),
            ("user_id", "varchar"),
            ("state", "varchar"),
            ("certified_at", "timestamp"),
            ("window_opens_at", "timestamp"),
            ("expires_at", "timestamp"),
        ),
    ),
    "previous_program_user": (
        "fct_program_user",
        (
            ("program_id", "varchar"),
            ("user_id", "varchar"),
            ("assigned_at", "timestamp"),
            ("due_at", "timestamp"),
            ("status", "varchar"),
            ("completed_at", "timestamp"),
            ("exception_type", "varchar"),
            ("exception_resolution", "varchar"),
            ("exception_raised_at", "timestamp"),
        ),
    ),
}


def previous_mart_table(mart: str) -> str:
    """The name, in schema main, of the published `mart` set aside before a build."""
    return f"{mart}__previous"


def ensure_previous_state(con: duckdb.DuckDBPyConnection) -> None:
    """Give every ``learnops.previous_*`` view its set-aside mart (empty on a first run).

    A warehouse from before the views holds ``learnops.previous_*`` as copied tables: they
    are dropped (the next build sets the marts aside again).
    """
    for view, (mart, columns) in PREVIOUS_STATE.items():
        found = con.execute(
            "select table_type from information_schema.tables "
            "where table_schema = 'learnops' and table_name = ?",
            [view],
        ).fetchone()
        if found is not None and found[0] == "BASE TABLE":
            con.execute(f"drop table learnops.{view}")
        declared = ", ".join(f"{name} {kind}" for name, kind in columns)  # ours, not an admin's
        con.execute(f"create table if not exists main.{previous_mart_table(mart)} ({declared})")
        listed = ", ".join(name for name, _ in columns)
        con.execute(
            f"create view if not exists learnops.{view} as "  # noqa: S608
            f"select {listed} from main.{previous_mart_table(mart)}"
        )


def ensure_state_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the bookkeeping, live-state and rule tables if this warehouse lacks them."""
    con.execute(BOOKKEEPING_DDL)
    con.execute(LIVE_STATE_DDL)
    con.execute(RULES_DDL)
    ensure_previous_state(con)
