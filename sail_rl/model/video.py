"""Video input: a clip becomes a few frames, each frame one tile (InternVL / SAIL-VL2 style).

    video = load_video("clip.mp4", num_frames=8)          # a file: decoded with PyAV
    video = load_video("clip_frames/", num_frames=8)      # a folder of frames: no decoder needed
    video = load_video([img0, img1, img2])                 # images already in memory

A `Video` travels where an image does (the `images` list of a prompt, a rollout request, a
reward input); in the text it is the `<video>` placeholder, which the processor writes as

    Frame1: <img><IMG_CONTEXT>...</img>
    Frame2: <img><IMG_CONTEXT>...</img>

with every frame squashed to one `image_size` square (no tiling, no thumbnail), as InternVL's
`load_video` does. Frames are sampled uniformly: the middle of `num_frames` equal segments, or
`fps` frames a second of the clip (at most `max_frames`), whichever the caller asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from sail_rl.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".gif")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass
class Video:
    """Sampled frames of one clip, RGB PIL images in time order; `source` names where they came from."""

    frames: list[Image.Image]
    source: str = ""
    frame_indices: list[int] = field(default_factory=list)  # positions in the clip (for the record)

    def __len__(self) -> int:
        return len(self.frames)


def sample_indices(total: int, num_frames: int | None = None, fps: float | None = None,
                   native_fps: float | None = None, max_frames: int = 32) -> list[int]:
    """Which of `total` frames to keep: the middle of each of n equal segments, n = num_frames, or
    fps x duration (duration = total / native_fps), capped at max_frames and at total.

    >>> sample_indices(8, num_frames=4)
    [1, 3, 5, 7]
    >>> sample_indices(30, fps=1.0, native_fps=10.0)   # a 3 s clip at 1 frame a second
    [5, 15, 25]
    >>> sample_indices(3, num_frames=8)                 # a short clip gives what it has
    [0, 1, 2]
    """
    if total <= 0:
        return []
    if fps is not None:
        if not native_fps:
            raise ValueError("sampling by fps needs the clip's frame rate")
        n = max(1, round(total / native_fps * fps))
    else:
        n = num_frames if num_frames is not None else max_frames
    n = max(1, min(n, max_frames, total))
    segment = total / n
    return [min(total - 1, int(segment * i + segment / 2)) for i in range(n)]


def load_video(source, num_frames: int | None = 8, fps: float | None = None, max_frames: int = 32,
               where: str = "video") -> Video:
    """A video file, a folder of frames, a list of images (or paths) or a `Video` -> `Video` of
    sampled RGB frames. One-line `DataError` for a missing, empty or undecodable source."""
    from sail_rl.model.image_processing import load_image

    if isinstance(source, Video):
        return source
    if isinstance(source, (list, tuple)):
        images = [load_image(img, f"{where} frame {i}") for i, img in enumerate(source)]
        keep = sample_indices(len(images), num_frames, None, None, max_frames)
        return _video([images[i] for i in keep], keep, f"{len(images)} images", where)
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if fps is not None:
            raise DataError(f"{where}: a folder of frames has no frame rate; sample it by num_frames, not fps ({path})")
        keep = sample_indices(len(files), num_frames, None, None, max_frames)
        frames = [load_image(files[i], f"{where} frame {files[i].name}") for i in keep]
        return _video(frames, keep, str(path), where)
    if not path.is_file():
        raise DataError(f"{where}: video not found at {path}; give a video file ({', '.join(VIDEO_SUFFIXES)}) or a folder of frames")
    return _decode(path, num_frames, fps, max_frames, where)


def _video(frames: list[Image.Image], keep: list[int], source: str, where: str) -> Video:
    if not frames:
        raise DataError(f"{where}: no frames in {source}; a folder needs {'/'.join(FRAME_SUFFIXES)} files")
    return Video(frames, source, keep)


def _decode(path: Path, num_frames: int | None, fps: float | None, max_frames: int, where: str) -> Video:
    """Decode with PyAV, keeping only the sampled frames (one pass when the container knows its
    frame count, two otherwise)."""
    try:
        import av
    except ImportError:  # pragma: no cover - av is a dependency
        raise DataError(f"{where}: decoding {path.name} needs PyAV (`pip install av`), or give a folder of frames") from None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            total = stream.frames or sum(1 for _ in container.decode(video=0))
            native_fps = float(stream.average_rate) if stream.average_rate else None
        keep = sample_indices(total, num_frames, fps, native_fps, max_frames)
        wanted, frames = set(keep), []
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    frames.append(frame.to_image().convert("RGB"))
                if len(frames) == len(keep):
                    break
    except (av.error.FFmpegError, IndexError) as exc:
        raise DataError(f"{where}: cannot decode video {path} ({type(exc).__name__}: {exc}); re-encode it (e.g. H.264 mp4) or give a folder of frames") from None
    return _video(frames, keep[: len(frames)], str(path), where)


def frame_tiles(video: Video, image_size: int) -> list[Image.Image]:
    """Each frame squashed to one `image_size` square: exactly one tile for the image processor."""
    return [f.resize((image_size, image_size), Image.BICUBIC) if f.size != (image_size, image_size) else f
            for f in video.frames]


def write_video(frames: list[Image.Image], path: str | Path, fps: int = 4) -> Path:
    """Frames -> a video file (MPEG-4 Part 2 in .mp4: every PyAV wheel can write it). Even sizes."""
    import av
    import numpy as np

    path = Path(path)
    width, height = frames[0].size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
        stream.options = {"qscale": "2"}  # near-lossless: colours survive the round trip
        for frame in frames:
            array = np.asarray(frame.convert("RGB"))[: stream.height, : stream.width]
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


__all__ = ["Video", "load_video", "sample_indices", "frame_tiles", "write_video"]
