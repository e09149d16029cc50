"""D3 miner entry point: `python neurons/miner.py --help` lists every flag."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from d3.miner.neuron import main

if __name__ == "__main__":
    sys.exit(main())
