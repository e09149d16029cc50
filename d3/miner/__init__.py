"""The miner: scrape tweets, keep them durably, publish them as shards."""
