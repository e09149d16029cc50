"""Tweet sources: one TweetSource interface (source.py) for miners' searches and
validators' look-ups; the X API v2 (x_api.py, with the X JSON → TweetRecord normaliser in
normalize.py), twscrape and Apify implementations; the rules every source shares
(common.py); the registry of source kinds (factory.py); and query plans (query_plan.py).
The local X API server the tests and local networks use is an offline stand-in, in d3/dev/."""
