import cv2
import numpy as np
import pytest
import torch

from fl_saliency.attention import normalise_common_max, render_input, resize_to_raw
from fl_saliency.networks import DENSE_GEOMETRY, FIRST_LAYER_GEOMETRY, SPARSE_GEOMETRY


def expected_square(row, col, geometry):
    """The receptive field of one cell on the 84x84 input, worked out by hand from rf, s, p."""
    out = np.zeros((84, 84), np.float32)
    top = row * geometry.stride - geometry.padding
    left = col * geometry.stride - geometry.padding
    rows = slice(max(top, 0), min(top + geometry.receptive_field, 84))
    cols = slice(max(left, 0), min(left + geometry.receptive_field, 84))
    out[rows, cols] = 1.0
    return out


@pytest.mark.parametrize(
    "geometry, cells",
    [
        (SPARSE_GEOMETRY, [(0, 0), (3, 5), (6, 6)]),
        (FIRST_LAYER_GEOMETRY, [(0, 0), (7, 13), (19, 19)]),
        (DENSE_GEOMETRY, [(0, 0), (40, 2), (83, 83)]),
    ],
)
def test_one_hot_map_renders_to_its_receptive_field(geometry, cells):
    maps = torch.zeros(len(cells), geometry.grid, geometry.grid)
    for b, (r, c) in enumerate(cells):
        maps[b, r, c] = 1.0
    rendered = render_input(maps, geometry).numpy()
    assert rendered.shape == (len(cells), 84, 84)
    for b, (r, c) in enumerate(cells):
        np.testing.assert_array_equal(rendered[b], expected_square(r, c, geometry))


def test_sparse_corner_squares_are_36_pixels_wide():
    maps = torch.zeros(1, 7, 7)
    maps[0, 6, 6] = 2.5
    rendered = render_input(maps, SPARSE_GEOMETRY)[0]
    assert rendered[48:84, 48:84].eq(2.5).all() and rendered.sum() == pytest.approx(2.5 * 36 * 36)


def test_rendering_sums_overlaps_and_clamps_negatives():
    maps = torch.zeros(1, 7, 7)
    maps[0, 0, 0] = 1.0
    maps[0, 0, 1] = 2.0
    maps[0, 6, 0] = -5.0
    rendered = render_input(maps, SPARSE_GEOMETRY)[0]
    assert rendered[0, 0] == 1.0 and rendered[0, 10] == 3.0 and rendered[0, 40] == 2.0
    assert rendered.min() == 0.0


def test_wrong_grid_is_refused():
    with pytest.raises(ValueError, match="7x7"):
        render_input(torch.zeros(1, 20, 20), SPARSE_GEOMETRY)


def test_common_max_divides_all_maps_by_one_peak_and_leaves_zero_maps():
    maps = torch.tensor([[[1.0, 2.0]], [[4.0, 0.0]]])
    np.testing.assert_allclose(normalise_common_max(maps).numpy(), maps.numpy() / 4.0)
    zeros = torch.zeros(2, 3, 3)
    assert normalise_common_max(zeros) is zeros
    np.testing.assert_allclose(normalise_common_max(maps, maximum=8.0).numpy(), maps.numpy() / 8.0)


def test_raw_resize_matches_opencv_bilinear():
    rng = np.random.default_rng(0)
    maps = rng.random((2, 84, 84)).astype(np.float32)
    ours = resize_to_raw(torch.from_numpy(maps)).numpy()
    assert ours.shape == (2, 210, 160)
    for b in range(2):
        reference = cv2.resize(maps[b], (160, 210), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(ours[b], reference, atol=1e-5)
