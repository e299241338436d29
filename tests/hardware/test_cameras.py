"""OpenCVCamera on a real video file written with cv2.VideoWriter (MJPG in AVI).

The file (the ``video`` fixture of conftest.py): 30 frames of 64x48; frame i is a solid colour, pure blue
in OpenCV's BGR order (255, 0, 0), with its top-left 8x8 block set to brightness 8 * i so frames can be
told apart.
"""

import itertools
import time

import numpy as np
import pytest

from gipo_robot.hardware.cameras import CameraError, OpenCVCamera
from tests.hardware.conftest import N_FRAMES, H, W


def test_frames_are_rgb_numbered_and_timestamped(video):
    with OpenCVCamera(video, fps=60.0) as cam:
        frames = [cam.read_latest()]
        while len(frames) < 5:
            frames.append(cam.read_new(frames[-1].index))
    first = frames[0].image
    assert first.shape == (H, W, 3) and first.dtype == np.uint8
    # BGR (255, 0, 0) must arrive as RGB (0, 0, 255); MJPG is lossy, so within a few levels.
    assert first[40, 40, 2] > 240 and first[40, 40, 0] < 15
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices))  # read_new never hands out the same frame twice
    stamps = [f.timestamp for f in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert all(abs(f.timestamp - time.monotonic()) < 60 for f in frames)  # monotonic clock, not epoch


def test_a_file_plays_at_its_rate_and_ends(video):
    # 30 frames at 60 fps cannot take less than 29 / 60 = 0.48 s; then the file ends and the last frame
    # (index 29, block brightness 8 * 29 = 232) stays readable.
    start = time.monotonic()
    with OpenCVCamera(video, fps=60.0) as cam:
        while not cam.ended and time.monotonic() - start < 20:
            time.sleep(0.01)
        elapsed = time.monotonic() - start
        last = cam.read_latest()
        assert cam.ended and cam.frames_grabbed == N_FRAMES
        with pytest.raises(CameraError, match="the video ended"):
            cam.read_new(last.index, timeout=0.5)
    assert elapsed >= 0.45
    assert last.index == N_FRAMES - 1
    assert abs(int(last.image[3, 3].mean()) - 232) < 12


def test_the_buffer_keeps_only_the_latest_frame(video):
    # A slow reader does not get a queue of old frames: after 0.3 s at 60 fps (~18 frames) the latest is
    # far past frame 0 (at least 5 under heavy load).
    with OpenCVCamera(video, fps=60.0) as cam:
        cam.read_latest()
        time.sleep(0.3)
        assert cam.read_latest().index >= 5


def test_loop_restarts_a_file(video):
    with OpenCVCamera(video, fps=300.0, loop=True) as cam:
        deadline = time.monotonic() + 20
        while cam.frames_grabbed <= N_FRAMES + 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cam.frames_grabbed > N_FRAMES + 5 and not cam.ended


def test_frames_are_resized_to_the_asked_size(video):
    with OpenCVCamera(video, width=32, height=24) as cam:
        assert cam.read_latest().image.shape == (24, 32, 3)


def test_clear_errors(tmp_path):
    with pytest.raises(CameraError, match="no such file"):
        OpenCVCamera(str(tmp_path / "missing.avi")).connect()
    junk = tmp_path / "junk.avi"
    junk.write_text("not a video")
    with pytest.raises(CameraError, match="cannot open source"):
        OpenCVCamera(str(junk)).connect()
    with pytest.raises(CameraError, match="read before connect"):
        OpenCVCamera(str(junk)).read_latest()
    with pytest.raises(ValueError, match="width"):
        OpenCVCamera(0, width=0, height=10)
    with pytest.raises(CameraError, match="cannot open source 97"):
        OpenCVCamera(97).connect()  # no /dev/video97
