"""Every error the hub raises, in one tree: catch `HubError` for all of them.

    HubError
    ├── SnapshotUnstable   the validator kept writing while its decisions were read: retry
    ├── RowsUnavailable    an accepted commitment's rows cannot be read now: retried next update
    ├── LedgerError        the builder's state belongs to another layout or another subnet
    ├── HubCorrupt         a copy does not match its index (names the first file)
    ├── SignatureInvalid   the index's signature does not verify (or is not the wanted hotkey's)
    └── ExportError        an export directory holds another query's or another source's output

The first two are conditions an update reports and outlives; the others stop the command.
"""


class HubError(Exception):
    pass


class SnapshotUnstable(HubError):
    pass


class RowsUnavailable(HubError):
    pass


class LedgerError(HubError):
    pass


class HubCorrupt(HubError, ValueError):
    pass


class SignatureInvalid(HubError, ValueError):
    pass


class ExportError(HubError):
    pass
