"""Chain access for the neurons: one small interface (`Chain`) and its SDK implementation."""

from d3.chain.interface import Chain, ChainVerdict, CommitmentRecord, MetagraphSnapshot, Neuron
from d3.chain.sdk import SdkChain, open_chain

__all__ = [
    "Chain",
    "ChainVerdict",
    "CommitmentRecord",
    "MetagraphSnapshot",
    "Neuron",
    "SdkChain",
    "open_chain",
]
