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


def _p_with_transparent_black() -> Image.Image:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # index 0 black, 1 red
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 0
    return image


def _from(mode: str, values) -> Image.Image:
    image = Image.new(mode, (len(values), 1))
    image.putdata(values)
    return image


@pytest.mark.parametrize(
    "name, image, expected",
    [
        ("1", _from("1", [0, 1]), [0, 255]),
        ("L", _from("L", [0, 100]), [0, 100]),
        ("LA: transparent black is white, opaque grey stays", Image.frombytes("LA", (2, 1), bytes([0, 0, 50, 255])), [255, 50]),
        ("P with a transparent colour", _p_with_transparent_black(), [(255, 255, 255), (255, 0, 0)]),
        ("I;16 full range is scaled", _from("I;16", [0, 32768, 65535]), [0, 128, 255]),
        ("I with 16-bit values is scaled", _from("I", [0, 1000, 65535]), [0, 4, 255]),
        ("I with 8-bit values is kept", _from("I", [0, 100, 255]), [0, 100, 255]),
        ("F in [0, 1]", _from("F", [0.0, 0.5, 1.0]), [0, 128, 255]),
        ("CMYK", Image.frombytes("CMYK", (2, 1), bytes([0, 0, 0, 0, 255, 0, 0, 0])), [(255, 255, 255), (0, 255, 255)]),
        ("RGBA: half transparent black is mid grey", Image.frombytes("RGBA", (3, 1), bytes([0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 128])), [0, 255, 127]),
    ],
)
def test_every_mode_becomes_faithful_rgb(name, image, expected):
    rgb = load_image(image)
    assert rgb.mode == "RGB"
    pixels = [rgb.getpixel((x, 0)) for x in range(rgb.width)]
    assert pixels == [e if isinstance(e, tuple) else (e, e, e) for e in expected], name


def test_sixteen_bit_png_and_transparent_png_files_keep_their_picture(tmp_path):
    import numpy as np

    from sail_rl.data import MathVistaSample, build_prompt

    gradient = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (4, 1))  # [4, 256] full 16-bit range
    Image.fromarray(gradient).save(tmp_path / "g16.png")
    grey = np.asarray(load_image(tmp_path / "g16.png"))[..., 0]
    assert grey[0, 0] == 0 and grey[0, -1] == 255 and abs(grey.mean() - 127.5) < 1  # clipping made it 99% white
    figure = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    figure.paste((0, 0, 0, 255), (2, 2, 6, 6))  # a black square on a transparent page
    figure.save(tmp_path / "fig.png")
    sample = MathVistaSample(pid="1", question="q", image=str(tmp_path / "fig.png"), answer="1",
                             question_type="free_form", answer_type="integer")
    _, [image] = build_prompt(sample, mode="direct")  # the RL / eval prompt path reads images the same way
    assert image.getpixel((0, 0)) == (255, 255, 255) and image.getpixel((3, 3)) == (0, 0, 0)
