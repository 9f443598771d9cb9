"""Schemathesis hooks for tests/contract/run: teach the generator the formats the API defines.

`format: cursor` is a `next_cursor` the API handed out for the same list, filters and sort;
no generator can invent one, and any other value is documented as refused with 400. The
first page (an empty cursor) is the one valid value a request can carry without a previous
response, so that is what positive tests send; the cursor walk itself is covered by the
integration tests.
"""

import uuid

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.format("cursor", st.just(""))

# `format: idempotency-key` is a key the client has not used before: a reused key with another
# request is documented as refused (422), so positive tests send a fresh one, as clients do.
# Replays themselves are covered by the integration tests.
schemathesis.openapi.format("idempotency-key", st.builds(lambda: str(uuid.uuid4())))

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
