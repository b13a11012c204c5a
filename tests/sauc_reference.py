"""The original's shuffled AUC written out literally on scikit-learn (metrics.auc_shuffled and
benchmark_atari_head.auc_shuffled_many), and the count-weighted AUC via roc_auc_score: the
independent references of test_metrics.py and test_atari_head_benchmark.py."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def ref_auc_shuffled(smap, fmap, omap, num_splits=100, random_state=42):
    """The original's auc_shuffled step by step, scikit-learn's roc_auc_score per split."""
    smap, fmap, omap = smap.ravel(), fmap.ravel(), omap.ravel()
    s_min, s_max = np.min(smap), np.max(smap)
    if np.isclose(s_min, s_max):
        return None
    smap = (smap - s_min) / (s_max - s_min)
    n_fix = np.sum(fmap)
    smap_true = []
    for v, cnt in zip(smap, fmap):
        smap_true.extend([v] * cnt)
    smap_true = np.array(smap_true)
    rnd = np.random.RandomState(seed=random_state).choice(
        np.arange(smap.shape[0]), size=(num_splits, n_fix), p=omap / omap.sum())
    y_true = np.zeros(n_fix * 2, dtype=np.uint8)
    y_true[n_fix:] = 1
    return np.mean([roc_auc_score(y_true, np.concatenate([smap[rnd[s]], smap_true]))
                    for s in range(num_splits)])


def ref_auc_shuffled_many(smaps, fmaps, random_state=42):
    gen = np.random.RandomState(seed=random_state)
    out = []
    for i, (smap, fmap) in enumerate(zip(smaps, fmaps)):
        if np.allclose(fmap, 0) or not np.isfinite(smap).all():
            out.append(None)
            continue
        idx = gen.randint(len(fmaps) - 1, size=(10,))
        idx[idx >= i] += 1
        omap = np.sum([fmaps[j] for j in idx], axis=0)
        out.append(ref_auc_shuffled(smap, fmap, omap, random_state=random_state) if omap.any() else None)
    return np.array(out, dtype=np.float64)


def sklearn_weighted_auc(smap, fmap, omap):
    s = smap.ravel().astype(np.float64)
    s = (s - s.min()) / (s.max() - s.min())
    y = np.r_[np.ones(s.size), np.zeros(s.size)]
    return roc_auc_score(y, np.r_[s, s], sample_weight=np.r_[fmap.ravel(), omap.ravel()])
