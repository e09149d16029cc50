"""Tweet sources: one TweetSource interface (source.py) for miners' searches and
validators' look-ups, the X API v2 implementation (x_api.py), the X JSON → TweetRecord
normaliser (normalize.py), query plans (query_plan.py), and a local X API v2 server for
tests and local networks (local_x_server.py, x_corpus.py, x_query.py)."""
