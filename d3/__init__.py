"""D3: a Bittensor subnet that turns the open internet into verified training data."""

__version__ = "0.1.0"

# The wire-format version shared by records, shards, manifests and commitments
# (docs/protocol.md). Bump it only together with a change to one of them.
PROTOCOL_VERSION = 1
