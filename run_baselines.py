#!/usr/bin/env python3
"""The original entry point: `python run_baselines.py --experiment-dir EXP [...]` = `fl-saliency evaluate`."""
import os
import sys

from fl_saliency.cli import main

if __name__ == "__main__":
    sys.exit(main(command="evaluate", prog=os.path.basename(sys.argv[0])))
