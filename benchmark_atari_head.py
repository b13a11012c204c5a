#!/usr/bin/env python3
"""The original entry point: `python benchmark_atari_head.py --experiment-dir EXP --atari-head-dir D --output-dir O`
= `fl-saliency saliency`."""
import os
import sys

from fl_saliency.cli import main

if __name__ == "__main__":
    sys.exit(main(command="saliency", prog=os.path.basename(sys.argv[0])))
