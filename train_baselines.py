#!/usr/bin/env python3
"""The original entry point: `python train_baselines.py --output-dir OUT [--network ...]` = `fl-saliency train`."""
import os
import sys

from fl_saliency.cli import main

if __name__ == "__main__":
    sys.exit(main(command="train", prog=os.path.basename(sys.argv[0])))
