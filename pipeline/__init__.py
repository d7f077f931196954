"""Pipeline stages (ingest, shard, ...), the data contract and the command line."""
