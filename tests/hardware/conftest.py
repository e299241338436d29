"""Shared fixtures: a real video file to stand in for a camera.

The file (written with cv2.VideoWriter, MJPG in AVI): 30 frames of 64x48; frame i is a solid colour, pure
blue in OpenCV's BGR order (255, 0, 0), with its top-left 8x8 block set to brightness 8 * i so frames can
be told apart.
"""

import numpy as np
import pytest

N_FRAMES, W, H = 30, 64, 48


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path_factory.mktemp("video") / "blue.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (W, H))
    assert writer.isOpened()
    for i in range(N_FRAMES):
        frame = np.zeros((H, W, 3), np.uint8)
        frame[:, :, 0] = 255  # blue in BGR
        frame[:8, :8] = 8 * i
        writer.write(frame)
    writer.release()
    return str(path)
