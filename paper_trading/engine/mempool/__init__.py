"""Mempool monitoring and the Fast Lane: on-chain events in, quick small paper trades out.

`events` holds the decoded events, `uniswap` the ABI decoding, `sources` where events come from
(a node's WebSocket or a recorded JSONL file) and `fast_lane` the reactions.
"""
