"""Development stand-ins that run offline: the dev chain, a local Redis, synthetic tweets,
the local X API server (x_server.py, x_corpus.py, x_query.py), dishonest sources, and a
validator runner for a network on one machine (runner.py: tests and benches)."""
