"""Sample grids: layout, padding, and the PNG written from them."""

import numpy as np
import pytest

from kexue.plots import image_grid, save_image_grid, to_uint8


def _images(n, c=1, h=2, w=3):
    # image i is filled with the value 10 * (i + 1), so each tile can be found in the grid
    return np.stack([np.full((c, h, w), 10 * (i + 1), np.uint8) for i in range(n)])


def test_grid_places_images_row_major_with_padding():
    grid = image_grid(_images(5), nrow=3, pad=1, pad_value=0)
    assert grid.shape == (2 * (2 + 1) + 1, 3 * (3 + 1) + 1, 1)
    for i in range(5):
        r, q = divmod(i, 3)
        y, x = 1 + r * 3, 1 + q * 4
        assert (grid[y: y + 2, x: x + 3, 0] == 10 * (i + 1)).all()
    assert (grid[4:6, 9:12] == 0).all()  # the sixth cell is empty: padding colour
    assert (grid[0] == 0).all() and (grid[:, 0] == 0).all() and (grid[3] == 0).all()


def test_default_layout_is_square_and_colour_is_channels_last():
    imgs = _images(9, c=3)
    imgs[4, 0], imgs[4, 1], imgs[4, 2] = 1, 2, 3
    grid = image_grid(imgs, pad=0)
    assert grid.shape == (6, 9, 3)
    assert grid[2:4, 3:6].reshape(-1, 3).tolist() == [[1, 2, 3]] * 6  # the centre tile


def test_grid_rejects_floats_and_wrong_rank():
    with pytest.raises(ValueError, match="uint8"):
        image_grid(np.zeros((2, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        image_grid(np.zeros((1, 2, 2), np.uint8))


def test_saved_png_is_the_grid_upscaled(tmp_path):
    from PIL import Image

    save_image_grid(tmp_path / "g.png", _images(4), nrow=2, upscale=3)
    png = np.asarray(Image.open(tmp_path / "g.png"))
    grid = image_grid(_images(4), nrow=2)[..., 0]
    assert png.shape == (grid.shape[0] * 3, grid.shape[1] * 3)
    assert np.array_equal(png[::3, ::3], grid)


def test_to_uint8_maps_levels_to_the_full_range():
    x = (np.array([0, 1, 2, 3]) + 0.5) / 4  # bin centres of 4 levels
    assert to_uint8(x, 4).tolist() == [0, 85, 170, 255]
    assert to_uint8(np.array([-0.3, 1.7]), 4).tolist() == [0, 255]  # clipped
    assert to_uint8(x - 0.5, 4, offset=-0.5).tolist() == [0, 85, 170, 255]
