"""Image preprocessing for SAIL-VL with PIL, numpy and torch only (never torchvision).

InternVL-style dynamic tiling: pick the grid (cols x rows, 1 <= cols*rows <= max_tiles)
whose aspect ratio is nearest the image's (ties go to the larger grid when the image is big
enough to fill it), resize to that grid of `image_size` squares, cut the tiles, and add a
whole-image thumbnail when there is more than one tile.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from sail_rl.errors import DataError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def candidate_grids(min_tiles: int, max_tiles: int) -> list[tuple[int, int]]:
    """All (cols, rows) with min_tiles <= cols*rows <= max_tiles, fewest tiles first."""
    grids = {
        (cols, rows)
        for n in range(min_tiles, max_tiles + 1)
        for cols in range(1, n + 1)
        for rows in range(1, n + 1)
        if min_tiles <= cols * rows <= max_tiles
    }
    return sorted(grids, key=lambda g: g[0] * g[1])


def best_grid(width: int, height: int, image_size: int, min_tiles: int, max_tiles: int) -> tuple[int, int]:
    """The grid whose aspect ratio is nearest width/height (InternVL's `find_closest_aspect_ratio`)."""
    aspect = width / height
    best, best_diff = (1, 1), float("inf")
    area = width * height
    for cols, rows in candidate_grids(min_tiles, max_tiles):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and area > 0.5 * image_size * image_size * cols * rows:
            best = (cols, rows)
    return best


def tile_image(
    image: Image.Image, image_size: int, min_tiles: int = 1, max_tiles: int = 6, use_thumbnail: bool = True
) -> list[Image.Image]:
    """Cut an RGB image into square tiles (+ thumbnail when tiled)."""
    cols, rows = best_grid(image.width, image.height, image_size, min_tiles, max_tiles)
    resized = image.resize((image_size * cols, image_size * rows), Image.BICUBIC)
    tiles = [
        resized.crop((c * image_size, r * image_size, (c + 1) * image_size, (r + 1) * image_size))
        for r in range(rows)
        for c in range(cols)
    ]
    if use_thumbnail and len(tiles) > 1:
        tiles.append(image.resize((image_size, image_size), Image.BICUBIC))
    return tiles


def load_image(image, where: str = "image") -> Image.Image:
    """A path, PIL image or array -> 8-bit RGB PIL image (`to_rgb`), with a one-line error for a
    missing or corrupt file. Every image sail-rl reads goes through here."""
    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, np.ndarray):
        return to_rgb(Image.fromarray(image))
    try:
        with Image.open(image) as img:
            img.load()
            return to_rgb(img)
    except FileNotFoundError:
        raise DataError(f"{where}: image file not found: {image}; check the path or the image root") from None
    except Exception as exc:  # PIL raises many kinds for broken files
        raise DataError(f"{where}: cannot read image {image} ({type(exc).__name__}: {exc}); replace or drop it") from None


_TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB without losing the picture (PIL's own `convert("RGB")` clips
    16-bit values to 255 and turns transparent pixels black).

    - transparency (RGBA, LA, PA, or P / L / RGB with a transparent colour) is composited on
      white, as document and chart renderers show it;
    - 16-bit grey (I;16*) is scaled by 255 / 65535; 32-bit integer grey (I) likewise when its
      values exceed 255 (else it holds 8-bit values); float grey (F) is taken as [0, 1] when
      its values fit there, else as [0, 255]; out-of-range values are clipped;
    - 1, L, P, CMYK, YCbCr, ... convert as PIL converts them.

    >>> to_rgb(Image.new("I;16", (1, 1), 65535)).getpixel((0, 0))
    (255, 255, 255)
    >>> to_rgb(Image.new("RGBA", (1, 1), (0, 0, 0, 0))).getpixel((0, 0))
    (255, 255, 255)
    """
    if image.mode in _TRANSPARENT_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)  # [H, W]
        peak = float(values.max()) if values.size else 0.0
        if image.mode.startswith("I;16") or (image.mode == "I" and peak > 255):
            values = values * (255.0 / 65535.0)
        elif image.mode == "F" and peak <= 1.0:
            values = values * 255.0
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")  # uint8 [H, W] -> L
    return image.convert("RGB")


class SailVLImageProcessor(BaseImageProcessor):
    """Images -> `pixel_values [tiles, 3, image_size, image_size]` and `num_tiles` per image."""

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        image_size: int = 448,
        min_tiles: int = 1,
        max_tiles: int = 6,
        use_thumbnail: bool = True,
        image_mean: tuple[float, ...] = CLIP_MEAN,
        image_std: tuple[float, ...] = CLIP_STD,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size = image_size
        self.min_tiles = min_tiles
        self.max_tiles = max_tiles
        self.use_thumbnail = use_thumbnail
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)

    def to_tensor(self, tile: Image.Image) -> torch.Tensor:
        """[3, S, S] float32, normalised."""
        array = np.asarray(tile, dtype=np.float32) / 255.0  # [S, S, 3]
        array = (array - np.asarray(self.image_mean, np.float32)) / np.asarray(self.image_std, np.float32)
        return torch.from_numpy(array.transpose(2, 0, 1).copy())

    def preprocess(self, images, max_tiles: int | None = None, crop_to_patches: bool = True, **kwargs) -> BatchFeature:
        """Images (or per-sample lists of images) -> pixel_values [tiles, 3, S, S], and the tiles of each
        image as `num_tiles` (list) and `num_patches` (tensor, InternVL's name). crop_to_patches=False: one tile."""
        images = images if isinstance(images, (list, tuple)) else [images]
        images = [img for item in images for img in (item if isinstance(item, (list, tuple)) else [item])]
        max_tiles = 1 if not crop_to_patches else self.max_tiles if max_tiles is None else max_tiles
        tensors, num_tiles = [], []
        for i, image in enumerate(images):
            tiles = tile_image(load_image(image, f"image {i}"), self.image_size, self.min_tiles, max_tiles, self.use_thumbnail)
            tensors.extend(self.to_tensor(t) for t in tiles)
            num_tiles.append(len(tiles))
        pixel_values = torch.stack(tensors) if tensors else torch.zeros(0, 3, self.image_size, self.image_size)
        return BatchFeature({"pixel_values": pixel_values, "num_tiles": num_tiles, "num_patches": torch.tensor(num_tiles)})

    def __call__(self, images, **kwargs) -> BatchFeature:
        return self.preprocess(images, **kwargs)


__all__ = ["SailVLImageProcessor", "tile_image", "best_grid", "load_image", "to_rgb"]
