"""Dynamic tiling and normalisation (PIL/numpy only)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from sail_rl.errors import DataError
from sail_rl.model.image_processing import SailVLImageProcessor, best_grid, load_image, tile_image


@pytest.mark.parametrize(
    "size,max_tiles,grid",
    [((64, 64), 4, (1, 1)), ((128, 64), 4, (2, 1)), ((64, 192), 4, (1, 3)), ((256, 256), 4, (2, 2)), ((400, 100), 4, (4, 1)), ((400, 100), 2, (2, 1))],
)
def test_best_grid_matches_aspect_ratio(size, max_tiles, grid):
    assert best_grid(*size, image_size=64, min_tiles=1, max_tiles=max_tiles) == grid


def test_tiles_plus_thumbnail():
    img = Image.new("RGB", (128, 64))
    tiles = tile_image(img, 64, max_tiles=4)
    assert len(tiles) == 3 and all(t.size == (64, 64) for t in tiles)
    assert len(tile_image(Image.new("RGB", (64, 64)), 64, max_tiles=4)) == 1  # no thumbnail for one tile


def test_tiles_keep_pixels_in_place():
    img = Image.new("RGB", (128, 64), (255, 255, 255))
    img.paste((255, 0, 0), (64, 0, 128, 64))  # right half red
    left, right, _ = tile_image(img, 64, max_tiles=4)
    assert left.getpixel((10, 10)) == (255, 255, 255) and right.getpixel((10, 10)) == (255, 0, 0)


def test_normalisation_and_shapes():
    proc = SailVLImageProcessor(image_size=64, max_tiles=4)
    out = proc([Image.new("RGB", (64, 64), (255, 255, 255)), Image.new("RGB", (256, 256))])
    assert out["pixel_values"].shape == (1 + 5, 3, 64, 64)
    assert out["num_tiles"] == [1, 5]
    expected = (1.0 - proc.image_mean[0]) / proc.image_std[0]
    assert torch.allclose(out["pixel_values"][0, 0], torch.full((64, 64), expected))


def test_bad_images_give_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="image file not found: .*missing.png"):
        load_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="cannot read image .*bad.png"):
        load_image(bad)
