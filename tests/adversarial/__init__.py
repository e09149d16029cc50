"""Adversarial validator tests: each attack commits in the same round as an honest miner.

| attack                                         | test                                      |
| ---------------------------------------------- | ----------------------------------------- |
| 1 fabricated tweets, consistent snowflakes     | test_forgery::test_fabricated_*           |
| 2 real IDs, altered rows                       | test_forgery::test_real_ids_with_altered_* |
| 3 copied shards re-signed later                | test_forgery::test_copied_shards_*        |
| 4 another hotkey's commitment replayed         | test_commitments::test_replayed_*         |
| 5 same tweets, other ID encodings              | test_forgery::test_same_tweet*            |
| 6 duplicate IDs                                | test_forgery::test_duplicate_ids_*        |
| 7 shard 10x the byte limit                     | test_resources::test_shard_ten_times_*    |
| 8 decompression bombs                          | test_resources::test_*bomb*               |
| 9 trickling host                               | test_hosts::test_trickling_*              |
| 10 100k tiny shards                            | test_resources::test_manifest_with_a_*    |
| 11 garbage commitments                         | test_commitments::test_garbage_*          |
| 12 manifest parent "loops"                     | test_manifest_chain                       |

"""
