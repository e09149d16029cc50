"""Development stand-ins that run offline: the dev chain, a local Redis, synthetic tweets."""
