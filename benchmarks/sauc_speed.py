"""Exact vs sampled shuffled AUC on the same maps, measured in the same run.

    python benchmarks/sauc_speed.py [--maps 200] [--repeats 3] [--sklearn]

Maps are 210x160 (the raw resolution) with 10-20 fixations each; each map's omap is the sum of
10 other maps' fixation maps, chosen as the benchmark does (``other_maps_for_sauc``). ``exact``
is the exact weighted AUC, ``sampled`` the original's 100-split estimate (bit for bit, ROC
arithmetic in numpy): the two functions of ``SHUFFLED_AUC`` that ``fl-saliency saliency`` calls
map by map. ``--sklearn`` also times the original's code path literally (scikit-learn's
``roc_auc_score`` per split). Each variant runs ``--repeats`` times and the minimum is reported,
in CPU time of this process (the code is single-threaded; CPU time is robust to other load on
the machine).
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from fl_saliency.scoring.gaze_metrics import SHUFFLED_AUC, other_maps_for_sauc


def make_maps(n_maps: int, seed: int = 0, shape=(210, 160)):
    rng = np.random.default_rng(seed)
    smaps = np.stack([cv2.GaussianBlur(rng.random(shape), (0, 0), 8.0) for _ in range(n_maps)])
    fmaps = np.zeros((n_maps, *shape), np.int64)
    for k in range(n_maps):
        n = int(rng.integers(10, 21))
        np.add.at(fmaps[k], (rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)), 1)
    others = other_maps_for_sauc(fmaps.sum(axis=(1, 2)))
    omaps = np.stack([fmaps[idx].sum(axis=0) for idx in others])
    return smaps, fmaps, omaps


def sklearn_sampled(smap, fmap, omap, num_splits=100, random_state=42):
    """The original's auc_shuffled as written (one roc_auc_score call per split)."""
    from sklearn.metrics import roc_auc_score

    smap, fmap, omap = smap.ravel(), fmap.ravel(), omap.ravel()
    smap = (smap - smap.min()) / (smap.max() - smap.min())
    n_fix = int(fmap.sum())
    positives = np.repeat(smap, fmap)
    rnd = np.random.RandomState(random_state).choice(
        smap.shape[0], size=(num_splits, n_fix), p=omap / omap.sum())
    y_true = np.r_[np.zeros(n_fix, np.uint8), np.ones(n_fix, np.uint8)]
    return np.mean([roc_auc_score(y_true, np.concatenate([smap[rnd[s]], positives]))
                    for s in range(num_splits)])


def timed(fn, smaps, fmaps, omaps, repeats):
    best, values = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        values = np.array([fn(s, f, o) for s, f, o in zip(smaps, fmaps, omaps)])
        best = min(best, time.process_time() - start)
    return best, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sklearn", action="store_true", help="also time the original's sklearn path")
    args = parser.parse_args()

    smaps, fmaps, omaps = make_maps(args.maps)
    print(f"{args.maps} maps 210x160, {int(fmaps.sum()) / args.maps:.1f} fixations/map, "
          f"omaps of 10 maps")

    t_exact, v_exact = timed(SHUFFLED_AUC["exact"], smaps, fmaps, omaps, args.repeats)
    t_sampled, v_sampled = timed(SHUFFLED_AUC["sampled"], smaps, fmaps, omaps, args.repeats)
    print(f"  exact   : {t_exact:8.4f} s  ({t_exact / args.maps * 1e3:.3f} ms/map)")
    print(f"  sampled : {t_sampled:8.4f} s  ({t_sampled / args.maps * 1e3:.3f} ms/map)")
    print(f"  ratio sampled/exact: {t_sampled / t_exact:.1f}x")
    print(f"mean |sampled - exact| = {np.mean(np.abs(v_sampled - v_exact)):.4f}, "
          f"mean exact = {np.mean(v_exact):.4f}, mean sampled = {np.mean(v_sampled):.4f}")
    if args.sklearn:
        t_sk, v_sk = timed(sklearn_sampled, smaps, fmaps, omaps, 1)
        same = bool(np.array_equal(v_sk, v_sampled))
        print(f"sampled via sklearn (the original's code path): {t_sk:8.4f} s, "
              f"ratio to exact {t_sk / t_exact:.1f}x, identical to 'sampled': {same}")


if __name__ == "__main__":
    main()
