"""Saliency benchmark on the Atari-HEAD data set."""
