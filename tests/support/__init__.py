"""Helpers shared by more than one test directory (fixtures stay in conftest.py files):

- `net`: a dev chain with a subnet and its wallets (`Net`, `dev_net`, `registered`, `run`,
  and `register` for a neuron process to run as);
- `runner`: a validator's round runner as the tests build it (`make_runner`, `audit_now`),
  on `d3.dev.runner.local_runner`, which benches use too;
- `neuron`: a neuron as a process whose log a test reads as it comes (`NeuronProcess`),
  and the miner on the dev network scraping a local X (`start_miner`, `PLAN`);
- `datasets`: miners' datasets written as a miner publishes them, and X as a table of the
  real tweets (`write_dataset`, `TruthLookup`, `register_and_publish`).
"""
