"""Video input: decoding and sampling, the processor's frame lines, the data records, SFT masks,
and the synthetic clips' answers re-derived from the decoded pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sail_rl.data.mathvista import load_samples
from sail_rl.data.prompts import build_prompt
from sail_rl.errors import DataError
from sail_rl.model.video import Video, load_video, sample_indices, write_video

COLOURS = [(220, 30, 30), (30, 160, 30), (30, 60, 220), (240, 140, 0), (140, 40, 180), (0, 0, 0), (255, 255, 255), (128, 128, 128)]


@pytest.fixture
def processor(tiny):
    return tiny[1]


def _frames(n: int = 8, size=(64, 48)) -> list[Image.Image]:
    return [Image.new("RGB", size, COLOURS[i % len(COLOURS)]) for i in range(n)]


def _mean(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64).reshape(-1, 3).mean(0)


def test_a_written_clip_decodes_to_its_frames_sampled_uniformly(tmp_path):
    path = write_video(_frames(8), tmp_path / "clip.mp4", fps=4)
    video = load_video(path, num_frames=4)
    assert video.frame_indices == [1, 3, 5, 7] and len(video) == 4
    for i, frame in zip(video.frame_indices, video.frames):
        assert frame.size == (64, 48)
        assert np.abs(_mean(frame) - COLOURS[i]).max() < 12  # the right frame, through the codec
    assert load_video(path, fps=1.0).frame_indices == [2, 6]  # 8 frames at 4 fps = 2 s -> 2 frames
    assert len(load_video(path, num_frames=None, max_frames=5)) == 5


def test_a_folder_of_frames_and_a_list_need_no_decoder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(_frames(6)):
        frame.save(folder / f"{i:03d}.png")
    (folder / "notes.txt").write_text("not a frame")
    video = load_video(folder, num_frames=3)
    assert video.frame_indices == [1, 3, 5]
    assert [tuple(_mean(f).round()) for f in video.frames] == [tuple(map(float, COLOURS[i])) for i in (1, 3, 5)]
    assert load_video(_frames(4), num_frames=8).frame_indices == [0, 1, 2, 3]
    with pytest.raises(DataError, match="sample it by num_frames, not fps"):
        load_video(folder, fps=2.0)


@pytest.mark.parametrize("make, match", [
    (lambda p: p / "missing.mp4", "video not found"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no frames in"),
    (lambda p: (p / "bad.mp4").write_bytes(b"not a video") and p / "bad.mp4", "cannot decode video"),
])
def test_bad_sources_are_one_line(tmp_path, make, match):
    with pytest.raises(DataError, match=match) as err:
        load_video(make(tmp_path), where="clip")
    assert "\n" not in str(err.value) and str(err.value).startswith("clip")


def test_sample_indices_cover_the_clip_evenly():
    assert sample_indices(100, num_frames=4) == [12, 37, 62, 87]
    assert sample_indices(0, num_frames=4) == []
    assert sample_indices(100, fps=100.0, native_fps=10.0, max_frames=16) == sample_indices(100, num_frames=16)


def test_the_processor_writes_a_frame_line_per_frame_each_one_tile(processor):
    frames = _frames(4, size=(200, 64))  # wide frames: an image this shape would be tiled 3x1 + thumbnail
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Which way?"}]}]
    text = processor.apply_chat_template(messages, thinking=False)
    video = processor([text], images=[[Video(frames)]], return_tile_counts=True)
    assert video["num_tiles"] == [1, 1, 1, 1] and video["pixel_values"].shape[0] == 4
    ctx = processor.image_token_id
    assert video["input_ids"][0].tolist().count(ctx) == 4 * processor.tokens_per_tile
    decoded = processor.tokenizer.decode(video["input_ids"][0])
    assert "Frame1: <img>" in decoded and "Frame4: <img>" in decoded and "Frame5" not in decoded
    # the same prompt written by hand as four one-tile images gives the same tokens and pixels
    by_hand = text.replace("<video>", "\n".join(f"Frame{i}: <image>" for i in range(1, 5)))
    square = [f.resize((processor.image_processor.image_size,) * 2, Image.BICUBIC) for f in frames]
    images = processor([by_hand], images=[square], return_tile_counts=True)
    assert torch.equal(images["input_ids"], video["input_ids"])
    assert torch.equal(images["pixel_values"], video["pixel_values"])
    # a file, a folder or a list of images stands for a video too (load_video's defaults: 8 frames)
    from_list = processor([text], images=[[frames]], return_tile_counts=True)
    assert torch.equal(from_list["pixel_values"], video["pixel_values"])
    with pytest.raises(DataError, match="video not found"):
        processor([text], images=[["missing.mp4"]])
    image_text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}]}])
    with pytest.raises(ValueError, match="a Video where the text has <image>"):
        processor([image_text], images=[[Video(frames)]])


def test_a_video_prompt_runs_through_the_model(tiny):
    model, processor = tiny
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "Same?"}]}]
    text = processor.apply_chat_template(messages, thinking=False)
    batch = processor([text], images=[[_frames(1, (64, 64))[0], Video(_frames(3))]], return_tile_counts=True)
    assert batch["image_tiles_per_sample"].tolist() == [4]
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       pixel_values=batch["pixel_values"], image_tiles_per_sample=batch["image_tiles_per_sample"]).logits
    assert torch.isfinite(logits).all()


def _write_records(tmp_path, records) -> str:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def _record(pid: str, **visual) -> dict:
    return {"pid": pid, "question": "Which way?", "answer": "left", "question_type": "free_form", "answer_type": "text", **visual}


def test_records_with_several_images_or_a_video(tmp_path):
    for i, frame in enumerate(_frames(2)):
        frame.save(tmp_path / f"{i}.png")
    write_video(_frames(8), tmp_path / "clip.mp4")
    path = _write_records(tmp_path, [_record("a", images=["0.png", "1.png"]), _record("v", video="clip.mp4", num_frames=4)])
    multi, clip = load_samples(path)
    messages, images = build_prompt(multi, "direct")
    assert [p["type"] for p in messages[0]["content"]] == ["image", "image", "text"] and len(images) == 2
    messages, images = build_prompt(clip, "direct")
    assert [p["type"] for p in messages[0]["content"]] == ["video", "text"]
    assert isinstance(images[0], Video) and images[0].frame_indices == [1, 3, 5, 7]


@pytest.mark.parametrize("visual, match", [
    ({}, "no visual field; give exactly one of 'image'"),
    ({"image": "0.png", "video": "clip.mp4"}, "image and video visual field"),
    ({"video": "nowhere.mp4"}, "video not found"),
    ({"video": "clip.mp4", "num_frames": 4, "fps": 1}, "'num_frames' or 'fps' for the video, not both"),
    ({"video": "clip.mp4", "num_frames": 0}, "'num_frames' must be a positive integer"),
    ({"images": []}, "'images' must be a non-empty list"),
])
def test_bad_visual_fields_are_one_line(tmp_path, visual, match):
    Image.new("RGB", (8, 8)).save(tmp_path / "0.png")
    write_video(_frames(4), tmp_path / "clip.mp4")
    with pytest.raises(DataError, match=match) as err:
        load_samples(_write_records(tmp_path, [_record("x", **visual)]))
    assert f"{tmp_path / 'data.jsonl'}:1 (pid x)" in str(err.value) and "\n" not in str(err.value)


def test_sft_masks_a_video_example(processor):
    from sail_rl.sft.examples import SFTExample
    from sail_rl.sft.masks import tokenize_example

    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Which way?"}]},
                {"role": "assistant", "content": "\\boxed{left}"}]
    out = tokenize_example(SFTExample("v", messages, [Video(_frames(3))], mode="direct"), processor)
    ctx = processor.image_token_id
    assert out["num_tiles"] == [1, 1, 1] and out["input_ids"].count(ctx) == 3 * processor.tokens_per_tile
    supervised = processor.tokenizer.decode([t for t, lab in zip(out["input_ids"], out["labels"]) if lab != -100])
    assert supervised.startswith("\\boxed{left}")


def test_synthetic_clips_answers_survive_the_codec(tmp_path):
    from sail_rl.data.synth import generate_dataset

    generate_dataset(tmp_path, n=18, families=["dot_direction", "flash_count", "last_shape"])
    samples = load_samples(tmp_path / "data.jsonl")
    assert {s.metadata["family"] for s in samples} == {"dot_direction", "flash_count", "last_shape"}
    for s in samples:
        (video,) = s.visuals()
        assert len(video) == 8
        pixels = [np.asarray(f, dtype=np.int16) for f in video.frames]  # [H, W, 3] each
        ink = [np.abs(p - 255).sum(-1) > 150 for p in pixels]  # non-white pixels per frame
        family = s.metadata["family"]
        if family == "dot_direction" and s.metadata["difficulty"] == 1:
            ys, xs = zip(*[np.nonzero(m) for m in (ink[0], ink[-1])])
            dx, dy = xs[1].mean() - xs[0].mean(), ys[1].mean() - ys[0].mean()
            seen = ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up")
            assert seen == s.answer, s.pid
        elif family == "flash_count":
            on = [m.sum() > 20 for m in ink]
            assert str(sum(1 for t, o in enumerate(on) if o and (t == 0 or not on[t - 1]))) == s.answer, s.pid
        elif family == "last_shape":
            assert s.metadata["synth"]["order"][-1] == s.answer
            assert ink[-1].sum() > ink[0].sum()  # shapes accumulate
