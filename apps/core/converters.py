"""The `<id:...>` path converter and its regex: integer ids with at most 18 digits.

`<int:...>` takes any number of digits, and a 20-digit id reached the database: SQLite's
driver raises OverflowError for it (a 500) and only some lookups are guarded by Django.
No row has such an id (ids are 64-bit), so the URL does not match and answers 404.
"""

from django.urls.converters import IntConverter

ID_DIGITS = 18  # below 2**63 whatever the digits: fits SQLite's and PostgreSQL's bigint
ID_REGEX = f"[0-9]{{1,{ID_DIGITS}}}"
MAX_ID = 10**ID_DIGITS - 1


class IdConverter(IntConverter):
    regex = ID_REGEX
