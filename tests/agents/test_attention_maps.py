import numpy as np
import pytest
import skimage.transform
import torch

from fl_saliency.agents.attention_maps import normalise_common_max, render_input, resize, resize_to_raw
from fl_saliency.agents.networks import DENSE_GEOMETRY, FIRST_LAYER_GEOMETRY, SPARSE_GEOMETRY


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


def test_common_max_follows_the_originals_allclose_zero_test():
    tiny = torch.full((1, 2, 2), 1e-9)
    assert normalise_common_max(tiny) is tiny  # np.allclose(1e-9, 0): left as it is
    small = torch.full((1, 2, 2), 1e-7)
    np.testing.assert_allclose(normalise_common_max(small).numpy(), 1.0)


def test_raw_resize_mirrors_about_the_edge_pixel_at_the_border():
    """84 -> 210 rows: row 0 samples source row 0.5 * 84/210 - 0.5 = -0.3, i.e. 0.7 p0 + 0.3 p1 (torch's
    bilinear would give p0); 84 -> 160 columns: column 0 samples -0.2375."""
    maps = torch.zeros(1, 84, 84)
    maps[0, 0, :], maps[0, 1, :] = 1.0, 2.0
    assert resize_to_raw(maps)[0, 0, 50].item() == pytest.approx(0.7 * 1.0 + 0.3 * 2.0, abs=1e-6)
    assert resize_to_raw(maps)[0, 209, 50].item() == pytest.approx(0.0, abs=1e-6)
    maps = torch.zeros(1, 84, 84)
    maps[0, :, 0], maps[0, :, 1] = 1.0, 2.0
    assert resize_to_raw(maps)[0, 100, 0].item() == pytest.approx(0.7625 * 1.0 + 0.2375 * 2.0, abs=1e-6)


def test_resize_refuses_to_downscale():
    with pytest.raises(ValueError, match="upscales only"):
        resize(torch.zeros(1, 84, 84), 42, 84)


def skimage_015_resize(image, height, width):
    """scikit-image 0.15's resize(image, (height, width)) with its defaults, transcribed: anti-aliasing sigma
    max(0, (factor - 1) / 2) = 0 when upscaling (no filter); the AffineTransform through the three corners,
    x = factor * (c + 0.5) - 0.5; _warp_fast in float64 with bilinear_interpolation (floor/ceil taps,
    (1 - dc) * left + dc * right, then rows) and coord_map mode 'R' (mirror); then clip to the input's range."""
    image = image.astype(np.float64)
    rows, cols = image.shape

    def coord_map(dim, coord):
        cmax = dim - 1
        coord = np.where(coord < 0, -coord, coord)
        return np.where(coord > cmax, 2 * cmax - coord, coord)

    r = (np.arange(height) + 0.5) * rows / height - 0.5
    c = (np.arange(width) + 0.5) * cols / width - 0.5
    minr, maxr = np.floor(r).astype(int), np.ceil(r).astype(int)
    minc, maxc = np.floor(c).astype(int), np.ceil(c).astype(int)
    dr, dc = (r - minr)[:, None], (c - minc)[None, :]
    pix = lambda rr, cc: image[coord_map(rows, rr)[:, None], coord_map(cols, cc)[None, :]]
    top = (1 - dc) * pix(minr, minc) + dc * pix(minr, maxc)
    bottom = (1 - dc) * pix(maxr, minc) + dc * pix(maxr, maxc)
    return np.clip((1 - dr) * top + dr * bottom, image.min(), image.max())


@pytest.mark.parametrize("shape", [(210, 160), (160, 160), (84, 84)])
def test_installed_scikit_image_resizes_as_0_15_did(shape):
    image = np.random.default_rng(1).random((84, 84)).astype(np.float32)
    np.testing.assert_allclose(skimage.transform.resize(image.astype(np.float64), shape),
                               skimage_015_resize(image, *shape), atol=1e-12)


@pytest.mark.parametrize("shape", [(210, 160), (160, 160)])
def test_resize_equals_scikit_image(shape):
    """The 210x160 screen (NSS/KL/sAUC maps, raw video) and the 160x160 processed tile, against scikit-image."""
    rng = np.random.default_rng(0)
    attention = torch.from_numpy(rng.normal(size=(3, 7, 7)).astype(np.float32))
    rendered = normalise_common_max(render_input(attention, SPARSE_GEOMETRY)).numpy()
    maps = np.concatenate([rendered, rng.random((2, 84, 84)).astype(np.float32)])
    ours = resize(torch.from_numpy(maps), *shape).numpy()
    assert ours.dtype == np.float64 and ours.shape == (5, *shape)
    for b in range(len(maps)):
        # 0.15 warped in float64 whatever the input; the float64 copy of the float32 map is what it saw.
        reference = skimage.transform.resize(maps[b].astype(np.float64), shape)
        np.testing.assert_allclose(ours[b], reference, rtol=0, atol=1e-12)
