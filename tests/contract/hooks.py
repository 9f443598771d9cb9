"""Schemathesis hooks for tests/contract/run: teach the generator the formats the API defines.

`format: cursor` is a `next_cursor` the API handed out for the same list, filters and sort;
no generator can invent one, and any other value is documented as refused with 400. The
first page (an empty cursor) is the one valid value a request can carry without a previous
response, so that is what positive tests send; the cursor walk itself is covered by the
integration tests.
"""

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.format("cursor", st.just(""))

# `format: iso-week` is a week that exists in its year (W53 only in some); `format: rrule` is an
# RFC 5545 recurrence the server can place (a zone on DTSTART, a local time that exists once,
# daily or rarer). Both are rules of the prose that no schema states; the refusals of the rest
# are covered by the unit and integration tests.
schemathesis.openapi.format(
    "iso-week",
    st.builds(lambda y, w: f"{y:04d}-W{w:02d}", st.integers(2000, 2099), st.integers(1, 52)),
)
# `format: time-zone` is a name of the server's tz database (the schema is a plain string so
# that clients accept zones added later; an unknown name is 422, covered by the tests).
schemathesis.openapi.format(
    "time-zone",
    st.sampled_from(["UTC", "Asia/Shanghai", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"]),
)
schemathesis.openapi.format(
    "rrule",
    st.sampled_from([
        "DTSTART;TZID=Asia/Shanghai:20270104T100000\nRRULE:FREQ=WEEKLY;COUNT=4",
        "DTSTART;TZID=Europe/Berlin:20270131T090000\nRRULE:FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3",
    ]),
)

# The Idempotency-Key header is left out of the fuzzed document: a generator reuses the same
# few keys across different requests, which the API refuses as documented (422), so every
# POST would drown in that one answer. Keys and replays are covered by the integration tests
# (tests/api/http.rs, the kit's conformance checks).
@schemathesis.hook
def before_load_schema(ctx, raw_schema):
    for item in raw_schema.get("paths", {}).values():
        post = item.get("post")
        if post and "parameters" in post:
            post["parameters"] = [p for p in post["parameters"] if p.get("name") != "Idempotency-Key"]


# Dates the API documents as "not in the future" (birthdays, order times) and "from 1900":
# generate within that window. The window is a rule of the prose, not of the schema, because
# the document is generated once and committed, and "today" moves.
from datetime import date, datetime, timedelta, timezone  # noqa: E402

_EARLIEST = datetime(1900, 1, 1)
_LATEST = datetime.now() - timedelta(days=1)
schemathesis.openapi.format(
    "date", st.dates(min_value=_EARLIEST.date(), max_value=_LATEST.date()).map(date.isoformat)
)
schemathesis.openapi.format(
    "date-time",
    st.datetimes(min_value=_EARLIEST, max_value=_LATEST).map(lambda d: d.replace(tzinfo=timezone.utc).isoformat()),
)
