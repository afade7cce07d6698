"""The demo organisation generator: determinism, shape, integrity, bad rows and churn."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from flows.demo.generator import FEED_COLUMNS, GenerationReport, generate_feeds

AS_OF = date(2026, 11, 1)
REASON_CODES = {
    "duplicate_key",
    "email_invalid",
    "country_invalid",
    "username_invalid",
    "parent_not_found",
    "parent_cycle",
    "organisation_not_found",
    "self_manager",
    "start_after_end",
    "course_not_found",
    "user_not_found",
    "date_invalid",
}
# Country -> the timezones people there may have (IANA), for the countries we generate.
TIMEZONES = {
    "GB": {"Europe/London"},
    "IE": {"Europe/Dublin"},
    "NZ": {"Pacific/Auckland"},
    "AU": {
        "Australia/Sydney",
        "Australia/Melbourne",
        "Australia/Brisbane",
        "Australia/Perth",
        "Australia/Adelaide",
    },
    "IN": {"Asia/Kolkata"},
    "SG": {"Asia/Singapore"},
    "DE": {"Europe/Berlin"},
    "FR": {"Europe/Paris"},
    "ZA": {"Africa/Johannesburg"},
    "US": {"America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"},
    "CA": {"America/Toronto", "America/Vancouver"},
}
USERNAME = re.compile(r"^[a-z0-9._@-]+$")
EMAIL = re.compile(r"^[a-z0-9._-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


# --- helpers -------------------------------------------------------------------------------


class Feeds:
    """The files of one generation, read as text, with the good rows separated out."""

    def __init__(self, report: GenerationReport) -> None:
        self.report = report
        self.raw = {
            element: pl.read_csv(
                report.out_dir / f"{element}.csv", infer_schema=False, encoding="utf8"
            )
            for element in FEED_COLUMNS
        }
        bad = {(b.element, b.record_id) for b in report.bad_rows}
        self.good = {element: self._drop_bad(element, bad) for element in FEED_COLUMNS}

    @staticmethod
    def record_id(element: str) -> pl.Expr:
        if element == "jobassignment":
            return pl.concat_str("useridnumber", pl.lit("/"), "idnumber")
        if element == "course_completion":
            return pl.concat_str(
                "useridnumber", pl.lit("/"), "courseidnumber", pl.lit("/"), "timecompleted"
            )
        if element == "user_access":
            return pl.col("useridnumber")
        return pl.col("idnumber")

    def _drop_bad(self, element: str, bad: set[tuple[str, str]]) -> pl.DataFrame:
        ids = [record for e, record in bad if e == element]
        return self.raw[element].filter(~self.record_id(element).is_in(ids))

    def __getitem__(self, element: str) -> pl.DataFrame:
        return self.good[element]


def generate(root: Path, name: str, users: int, **options: object) -> Feeds:
    return Feeds(generate_feeds(root / name, users, **options))  # type: ignore[arg-type]


def manager_graph(jobs: pl.DataFrame) -> dict[str, set[str]]:
    """user -> the users who manage any of their jobs."""
    graph: dict[str, set[str]] = {}
    for user, manager in jobs.select("useridnumber", "manageridnumber").iter_rows():
        graph.setdefault(user, set())
        if manager is not None:
            graph[user].add(manager)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in a directed graph (iterative depth-first walk), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in graph:
        if state.get(start):
            continue
        path, stack = [start], [iter(graph.get(start, ()))]
        state[start] = 1
        while stack:
            node = next(stack[-1], None)
            if node is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(node) == 1:
                return [*path[path.index(node) :], node]
            elif not state.get(node):
                state[node] = 1
                path.append(node)
                stack.append(iter(graph.get(node, ())))
    return None


def depth_of(parents: dict[str, str | None], item: str) -> int:
    depth = 1
    while (item := parents[item]) is not None:  # type: ignore[assignment]
        depth += 1
    return depth


def assert_unique(frame: pl.DataFrame, key: list[str], element: str) -> None:
    duplicates = frame.group_by(key).len().filter(pl.col("len") > 1)
    assert duplicates.height == 0, f"{element}: duplicate keys {duplicates.head(3).rows()}"


def assert_subset(values: pl.Series, known: pl.Series, what: str) -> None:
    missing = set(values.drop_nulls().to_list()) - set(known.to_list())
    assert not missing, f"{what}: unknown {sorted(missing)[:5]}"


def assert_consistent(feeds: Feeds) -> None:
    """Every invariant the importer relies on for good rows."""
    orgs, positions, users = feeds["org"], feeds["pos"], feeds["user"]
    jobs, courses = feeds["jobassignment"], feeds["course"]
    completions, access = feeds["course_completion"], feeds["user_access"]

    for element, key in (
        ("org", ["idnumber"]),
        ("pos", ["idnumber"]),
        ("user", ["idnumber"]),
        ("jobassignment", ["useridnumber", "idnumber"]),
        ("course", ["idnumber"]),
        ("course_completion", ["useridnumber", "courseidnumber", "timecompleted"]),
        ("user_access", ["useridnumber"]),
    ):
        assert_unique(feeds[element], key, element)

    assert_subset(orgs["parentidnumber"], orgs["idnumber"], "org parent")
    assert_subset(positions["parentidnumber"], positions["idnumber"], "pos parent")
    for column in ("useridnumber", "manageridnumber", "appraiseridnumber"):
        assert_subset(jobs[column], users["idnumber"], f"job {column}")
    assert_subset(jobs["orgidnumber"], orgs["idnumber"], "job organisation")
    assert_subset(jobs["posidnumber"], positions["idnumber"], "job position")
    assert_subset(completions["useridnumber"], users["idnumber"], "completion user")
    assert_subset(completions["courseidnumber"], courses["idnumber"], "completion course")
    assert_subset(access["useridnumber"], users["idnumber"], "access user")

    named = jobs.filter(pl.col("managerjobassignmentidnumber").is_not_null())
    manager_jobs = named.join(
        jobs.select(
            pl.col("useridnumber").alias("manageridnumber"),
            pl.col("idnumber").alias("managerjobassignmentidnumber"),
        ),
        on=["manageridnumber", "managerjobassignmentidnumber"],
        how="anti",
    )
    assert manager_jobs.height == 0, f"manager jobs not found: {manager_jobs.head(3).rows()}"
    assert jobs.filter(pl.col("manageridnumber") == pl.col("useridnumber")).height == 0
    assert find_cycle(manager_graph(jobs)) is None
    org_parents = dict(orgs.select("idnumber", "parentidnumber").iter_rows())
    assert find_cycle({k: {v} if v else set() for k, v in org_parents.items()}) is None

    dated = jobs.filter(pl.col("enddate").is_not_null())
    assert (dated["startdate"] <= dated["enddate"]).all()
    assert set(users["idnumber"]) == set(jobs["useridnumber"]), "everyone has a job"


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def small(root: Path) -> Feeds:
    return generate(root, "small", 300)


@pytest.fixture(scope="module")
def medium(root: Path) -> Feeds:
    return generate(root, "medium", 2_000)


@pytest.fixture(scope="module")
def medium_epoch1(root: Path) -> Feeds:
    return generate(root, "medium_e1", 2_000, epoch=1)


# --- determinism and files -----------------------------------------------------------------


def test_same_inputs_give_identical_bytes(root: Path, small: Feeds) -> None:
    again = generate_feeds(root / "small_again", 300)
    for element in FEED_COLUMNS:
        name = f"{element}.csv"
        assert (again.out_dir / name).read_bytes() == (small.report.out_dir / name).read_bytes()
    assert again == GenerationReport(**{**small.report.__dict__, "out_dir": again.out_dir})


def test_another_seed_gives_another_organisation(root: Path, medium: Feeds) -> None:
    other = generate(root, "medium_seed8", 2_000, seed=8)
    for element in ("org", "user", "jobassignment", "course_completion", "user_access"):
        assert not other.raw[element].equals(medium.raw[element]), element
    assert other["user"].height == medium["user"].height


def test_every_file_has_totara_columns_and_reported_rows(small: Feeds) -> None:
    for element, columns in FEED_COLUMNS.items():
        path = small.report.out_dir / f"{element}.csv"
        header = path.read_text(encoding="utf-8").split("\n", 1)[0]
        assert header == ",".join(columns)
        assert small.report.rows[element] == small.raw[element].height
    # No quoting anywhere: the importer's fast CSV path applies.
    assert all(
        '"' not in (small.report.out_dir / f"{e}.csv").read_text("utf-8") for e in FEED_COLUMNS
    )


def test_sizes_scale_with_users(small: Feeds, medium: Feeds) -> None:
    assert medium["user"].height == 2_000
    assert medium["org"].height == 40  # users / 50
    assert small["org"].height == 8  # the floor
    assert 1.05 <= medium["jobassignment"].height / 2_000 <= 1.15
    assert medium["course"].height == 20
    assert 80 <= medium["pos"].height <= 300
    per_user = medium["course_completion"].height / medium["user"].height
    assert 10 <= per_user <= 30


# --- integrity of good rows ----------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["small", "medium", "medium_epoch1"])
def test_good_rows_are_consistent(fixture: str, request: pytest.FixtureRequest) -> None:
    assert_consistent(request.getfixturevalue(fixture))


def test_one_ceo_and_a_management_tree_of_sensible_shape(medium: Feeds) -> None:
    first_jobs = medium["jobassignment"].filter(pl.col("idnumber") == "J1")
    assert first_jobs.height == 2_000
    ceo = first_jobs.filter(pl.col("manageridnumber").is_null())
    assert ceo.height == 1
    assert ceo["fullname"].item() == "Chief Executive Officer"
    assert ceo["orgidnumber"].item() == "ORG00001"

    parents = dict(first_jobs.select("useridnumber", "manageridnumber").iter_rows())
    depths = [depth_of(parents, user) for user in parents]
    assert 4 <= max(depths) <= 12
    spans = medium["jobassignment"].group_by("manageridnumber").len().drop_nulls()
    assert 4 <= spans["len"].mean() <= 11  # type: ignore[operator]

    # Managers sit at or above their reports' organisation (first jobs).
    org_parents = dict(medium["org"].select("idnumber", "parentidnumber").iter_rows())
    org_of = dict(first_jobs.select("useridnumber", "orgidnumber").iter_rows())

    def ancestors(org: str | None) -> set[str]:
        found = set()
        while org is not None:
            found.add(org)
            org = org_parents[org]
        return found

    for user, manager in parents.items():
        if manager is not None:
            assert org_of[manager] in ancestors(org_of[user])


def test_second_jobs_and_manager_job_references(medium: Feeds) -> None:
    jobs = medium["jobassignment"]
    second = jobs.filter(pl.col("idnumber") == "J2")
    assert 0.07 <= second.height / 2_000 <= 0.13
    assert second["manageridnumber"].null_count() == 0
    assert jobs["managerjobassignmentidnumber"].drop_nulls().len() > 0
    assert jobs["appraiseridnumber"].drop_nulls().len() > 0
    assert jobs["enddate"].drop_nulls().len() > 0


def test_organisation_tree_is_realistic(medium: Feeds, root: Path) -> None:
    orgs = medium["org"]
    assert orgs.filter(pl.col("parentidnumber").is_null())["idnumber"].to_list() == ["ORG00001"]
    assert set(orgs["frameworkidnumber"]) == {"ORGFW1"}
    assert {"company", "division", "region"} <= set(orgs["typeidnumber"])
    assert orgs["customfield_costcentre"].null_count() == 0
    assert "Finance" in set(orgs["fullname"])

    large = generate(root, "large", 20_000, bad_rows=False)["org"]
    assert large.height == 400
    parents = dict(large.select("idnumber", "parentidnumber").iter_rows())
    assert max(depth_of(parents, o) for o in parents) in (4, 5, 6)
    assert {"department", "branch"} & set(large["typeidnumber"])


def test_people_look_real(medium: Feeds) -> None:
    users = medium["user"]
    n = users.height
    assert users["username"].str.contains(USERNAME.pattern).all()
    assert users["username"].str.to_lowercase().n_unique() == n
    emails = users["email"].drop_nulls()
    assert emails.str.contains(EMAIL.pattern).all()
    assert emails.str.to_lowercase().n_unique() == emails.len()
    assert 0.002 <= users["email"].null_count() / n <= 0.03
    assert 0.01 <= (users["suspended"] == "1").mean() <= 0.035  # type: ignore[operator]
    assert set(users["suspended"]) | set(users["emailstop"]) | set(users["deleted"]) <= {"0", "1"}
    assert set(users["deleted"]) == {"0"}
    for country, zone in users.select("country", "timezone").unique().iter_rows():
        assert zone in TIMEZONES[country], (country, zone)
    assert users["country"].n_unique() >= 6
    assert set(users["lang"]) <= {"en", "en_us", "de", "fr"}
    assert set(users["customfield_employeetype"]) == {"Permanent", "Contractor", "Intern"}
    assert users["customfield_region"].null_count() == 0
    assert users["department"].null_count() == 0
    hired = users["customfield_hiredate"].str.to_date("%Y-%m-%d")
    assert hired.max() < AS_OF  # type: ignore[operator]
    names = set(users["firstname"]) | set(users["lastname"])
    assert any(not name.isascii() for name in names), "some non-ASCII names"
    assert any("'" in name for name in names), "an apostrophe (O'Brien)"


def test_learning_records_are_a_history_before_as_of(medium: Feeds) -> None:
    completions = medium["course_completion"]
    assert completions["timecompleted"].str.contains(TIMESTAMP.pattern).all()
    when = completions["timecompleted"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ")
    assert when.max() < datetime(2026, 11, 1)  # type: ignore[operator]
    assert when.min() >= datetime(2019, 1, 1)  # type: ignore[operator]
    grades = completions["grade"].drop_nulls().cast(pl.Int64)
    assert grades.min() >= 0 and grades.max() <= 100  # type: ignore[operator]
    assert completions["grade"].null_count() > 0

    # Recertification: the same course again roughly a year later.
    repeats = (
        completions.with_columns(when.alias("t"))
        .sort("useridnumber", "courseidnumber", "t")
        .with_columns(pl.col("t").diff().over("useridnumber", "courseidnumber").alias("gap"))
        .filter(pl.col("gap").is_not_null())
    )
    assert repeats.height > 1_000
    gaps = repeats["gap"].dt.total_days()
    assert gaps.min() >= 300 and gaps.median() <= 400  # type: ignore[operator]

    scores = medium["course"]["score"].cast(pl.Int64)
    assert scores.min() >= 1 and scores.max() <= 10  # type: ignore[operator]


def test_a_later_as_of_only_adds_completions(root: Path, medium: Feeds) -> None:
    later = generate(root, "medium_later", 2_000, as_of=AS_OF + timedelta(days=30))
    key = ["useridnumber", "courseidnumber", "timecompleted"]
    before, after = medium["course_completion"], later["course_completion"]
    assert before.join(after, on=key, how="anti").height == 0, "history never moves"
    added = after.join(before, on=key, how="anti")
    assert added.height > 0
    assert (added["timecompleted"] >= "2026-11-01").all()
    assert later["user"].equals(medium["user"])  # people do not depend on as_of


def test_access_dates_fit_the_completions(medium: Feeds) -> None:
    access = medium["user_access"]
    users = medium["user"].height
    logged_in = access.filter(pl.col("firstaccess").is_not_null())
    never = 1 - logged_in.height / users
    assert 0.03 <= never <= 0.08
    first = logged_in["firstaccess"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ")
    last = logged_in["lastaccess"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ")
    assert (first <= last).all()
    latest = (
        medium["course_completion"]
        .group_by("useridnumber")
        .agg(pl.col("timecompleted").max())
        .join(logged_in, on="useridnumber", how="left")
    )
    assert latest["lastaccess"].null_count() == 0, "learners have logged in"
    assert (latest["timecompleted"] <= latest["lastaccess"]).all()


# --- deliberately bad rows -----------------------------------------------------------------


def test_bad_rows_are_listed_once_with_known_codes(small: Feeds, medium: Feeds) -> None:
    listed = small.report.bad_rows
    assert {b.reason_code for b in listed} == REASON_CODES
    assert len(listed) == 13
    assert len({(b.element, b.record_id) for b in listed}) == 13
    # The same set whatever the size.
    codes = sorted((b.element, b.reason_code) for b in medium.report.bad_rows)
    assert sorted((b.element, b.reason_code) for b in listed) == codes


def _bad_row(feeds: Feeds, code: str, record: str | None = None) -> pl.DataFrame:
    entry = next(
        b
        for b in feeds.report.bad_rows
        if b.reason_code == code and (record is None or b.record_id == record)
    )
    raw = feeds.raw[entry.element]
    return raw.filter(Feeds.record_id(entry.element) == entry.record_id)


def test_each_bad_row_is_present_and_wrong_as_described(medium: Feeds) -> None:
    good_users = medium["user"]["idnumber"]
    good_orgs = medium["org"]["idnumber"]
    good_courses = medium["course"]["idnumber"]

    duplicate = _bad_row(medium, "duplicate_key")
    assert duplicate.height == 2
    assert duplicate["username"].n_unique() == 2  # only the key clashes
    assert "@" not in _bad_row(medium, "email_invalid")["email"].item()
    assert _bad_row(medium, "country_invalid")["country"].item() == "UK"
    assert re.search(r"[ !]", _bad_row(medium, "username_invalid")["username"].item())

    orphan = _bad_row(medium, "parent_not_found")
    assert orphan["parentidnumber"].item() not in set(medium.raw["org"]["idnumber"])
    cycle = [b.record_id for b in medium.report.bad_rows if b.reason_code == "parent_cycle"]
    first, second = (_bad_row(medium, "parent_cycle", r) for r in cycle)
    assert first["parentidnumber"].item() == second["idnumber"].item()
    assert second["parentidnumber"].item() == first["idnumber"].item()

    job = _bad_row(medium, "organisation_not_found")
    assert job["orgidnumber"].item() not in set(good_orgs)
    assert job["useridnumber"].item() in set(good_users)
    job = _bad_row(medium, "self_manager")
    assert job["manageridnumber"].item() == job["useridnumber"].item()
    job = _bad_row(medium, "start_after_end")
    assert job["startdate"].item() > job["enddate"].item()
    assert _bad_row(medium, "date_invalid")["startdate"].item() == "31/02/2024"

    completion = _bad_row(medium, "course_not_found")
    assert completion["courseidnumber"].item() not in set(good_courses)
    assert completion["useridnumber"].item() in set(good_users)
    completion = _bad_row(medium, "user_not_found")
    assert completion["useridnumber"].item() not in set(medium.raw["user"]["idnumber"])
    assert completion["courseidnumber"].item() in set(good_courses)


def test_no_good_row_depends_on_a_bad_one(medium: Feeds) -> None:
    bad_users = {b.record_id for b in medium.report.bad_rows if b.element == "user"}
    bad_orgs = {b.record_id for b in medium.report.bad_rows if b.element == "org"}
    jobs = medium["jobassignment"]
    for column in ("useridnumber", "manageridnumber", "appraiseridnumber"):
        assert not set(jobs[column].drop_nulls()) & bad_users
    assert not set(jobs["orgidnumber"]) & bad_orgs
    assert not set(medium["org"]["parentidnumber"].drop_nulls()) & bad_orgs
    assert not set(medium["course_completion"]["useridnumber"]) & bad_users


def test_without_bad_rows_only_good_rows_are_written(root: Path, small: Feeds) -> None:
    clean = generate(root, "clean", 300, bad_rows=False)
    assert clean.report.bad_rows == ()
    for element in FEED_COLUMNS:
        assert clean.raw[element].equals(small[element]), element


# --- churn ---------------------------------------------------------------------------------


def _removed(before: pl.DataFrame, after: pl.DataFrame, key: list[str]) -> int:
    return before.join(after.select(key), on=key, how="anti").height


def test_epoch_one_churns_as_documented(medium: Feeds, medium_epoch1: Feeds) -> None:
    before, after = medium, medium_epoch1
    users_before, users_after = before["user"], after["user"]

    left = _removed(users_before, users_after, ["idnumber"])
    joined = users_after.join(users_before.select("idnumber"), on="idnumber", how="anti")
    assert 0 < left / users_before.height < 0.05
    assert 0 < joined.height / users_before.height < 0.05
    assert joined["idnumber"].min() > users_before["idnumber"].max()  # type: ignore[operator]
    hired = joined["customfield_hiredate"].str.to_date("%Y-%m-%d")
    assert hired.min() >= AS_OF - timedelta(days=7)  # type: ignore[operator]

    key = ["useridnumber", "idnumber"]
    jobs_before, jobs_after = before["jobassignment"], after["jobassignment"]
    assert 0 < _removed(jobs_before, jobs_after, key) / jobs_before.height < 0.05
    changed = jobs_after.join(jobs_before, on=key, suffix="_0").filter(
        (pl.col("orgidnumber") != pl.col("orgidnumber_0"))
        | (pl.col("manageridnumber").ne_missing(pl.col("manageridnumber_0")))
        | (pl.col("posidnumber") != pl.col("posidnumber_0"))
    )
    assert 0.01 <= changed.height / jobs_before.height <= 0.10
    assert (changed["timemodified"] != changed["timemodified_0"]).all()

    orgs_before, orgs_after = before["org"], after["org"]
    removed_orgs = _removed(orgs_before, orgs_after, ["idnumber"])
    assert removed_orgs >= 1 and removed_orgs / orgs_before.height < 0.10
    renamed = orgs_after.join(orgs_before, on="idnumber", suffix="_0").filter(
        pl.col("fullname") != pl.col("fullname_0")
    )
    assert renamed.height >= 1

    people = users_after.join(users_before, on="idnumber", suffix="_0")
    assert people.filter(pl.col("lastname") != pl.col("lastname_0")).height >= 1
    assert people.filter(pl.col("email").ne_missing(pl.col("email_0"))).height >= 1

    key = ["useridnumber", "courseidnumber", "timecompleted"]
    new = after["course_completion"].join(before["course_completion"], on=key, how="anti")
    assert new.height > 0
    when = new["timecompleted"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ")
    assert when.min() >= datetime(2026, 10, 25)  # type: ignore[operator]
    assert "round 1" in after.report.rule_mix["churn"]


def test_several_epochs_stay_consistent_and_under_the_removal_guard(root: Path) -> None:
    previous = generate(root, "e2", 2_000, epoch=2, as_of=AS_OF + timedelta(days=14))
    current = generate(root, "e3", 2_000, epoch=3, as_of=AS_OF + timedelta(days=21))
    assert_consistent(current)
    for element, key in (
        ("user", ["idnumber"]),
        ("org", ["idnumber"]),
        ("jobassignment", ["useridnumber", "idnumber"]),
        ("pos", ["idnumber"]),
        ("course", ["idnumber"]),
    ):
        removed = _removed(previous[element], current[element], key)
        assert removed / previous[element].height < 0.10, element


def test_tiny_organisations_work_and_bad_sizes_are_refused(root: Path) -> None:
    for users in (1, 10, 50):
        feeds = generate(root, f"tiny{users}", users, epoch=1)
        assert feeds["user"].height == users
        assert_consistent(feeds)
    with pytest.raises(ValueError, match="users"):
        generate_feeds(root / "none", 0)
    with pytest.raises(ValueError, match="epoch"):
        generate_feeds(root / "negative", 10, epoch=-1)
