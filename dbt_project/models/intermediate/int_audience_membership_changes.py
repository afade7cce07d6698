"""Who joined and who left each audience in this run: audience_id, user_id, event.

The difference of int_audience_member_sets' two sets per audience. A re-run with the same
inputs finds none. fct_audience_membership applies these rows; fct_audience_membership_event
records them.
"""

from flows import audience_sets


def model(dbt, session):
    dbt.config(materialized="table")
    names = audience_sets.register(
        {
            "member_sets": dbt.ref("int_audience_member_sets"),
            "user_keys": dbt.ref("int_audience_user_keys"),
        },
        prefix="membership_changes",
    )
    return audience_sets.membership_changes(session, names["member_sets"], names["user_keys"])
