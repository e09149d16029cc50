"""Helpers shared by more than one test directory (fixtures stay in conftest.py files):

- `net`: a dev chain with a subnet and its wallets (`Net`, `dev_net`, `registered`, `run`);
- `runner`: a validator's round runner as the tests build it (`make_runner`, `audit_now`);
- `datasets`: miners' datasets written as a miner publishes them, and X as a table of the
  real tweets (`write_dataset`, `TruthLookup`, `register_and_publish`).
"""
