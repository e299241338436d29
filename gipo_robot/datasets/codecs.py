"""A Zarr v3 image codec: each chunk holds one frame ``(1, H, W, C)`` uint8, encoded with ``imagecodecs``.

``imagecodecs`` ships numcodecs-style codecs, which Zarr 3 only takes for ``zarr_format=2`` arrays; this
module wraps its QOI/PNG/JPEG/WebP encoders as a Zarr 3 array->bytes codec named ``gipo_robot.image``.
Importing :mod:`gipo_robot.datasets` registers it, and the ``zarr.codecs`` entry point in
``pyproject.toml`` lets plain ``zarr.open`` find it wherever ``gipo-robot`` is installed. Stores written
with it are therefore readable only where this package is installed.

QOI, PNG and WebP (lossless mode) keep every value; JPEG is lossy (``quality`` 0-100). QOI ("Quite OK
Image", the default) decodes about 4x faster than PNG at a similar size (see
:data:`~gipo_robot.datasets.schema.DEFAULT_IMAGE_CODEC`); it takes 3- or 4-channel frames only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import JSON, parse_named_configuration
from zarr.registry import register_codec

if TYPE_CHECKING:
    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer

CODEC_NAME = "gipo_robot.image"
FORMATS = ("qoi", "png", "jpeg", "webp")


def _encode_frame(frame: np.ndarray, fmt: str, quality: int) -> bytes:
    """Encode one ``(H, W, C)`` uint8 frame."""
    import imagecodecs

    if fmt == "qoi":
        return imagecodecs.qoi_encode(frame)
    if frame.shape[-1] == 1:
        frame = frame[..., 0]
    if fmt == "png":
        return imagecodecs.png_encode(frame, level=1)
    if fmt == "jpeg":
        return imagecodecs.jpeg8_encode(frame, level=quality)
    return imagecodecs.webp_encode(frame, lossless=True)


def decode_frame(data: bytes | np.ndarray, fmt: str) -> np.ndarray:
    """Decode one frame encoded by :func:`_encode_frame` (``(H, W, C)``, or ``(H, W)`` for one channel)."""
    import imagecodecs

    if fmt == "qoi":
        return imagecodecs.qoi_decode(data)
    if fmt == "png":
        return imagecodecs.png_decode(data)
    if fmt == "jpeg":
        return imagecodecs.jpeg8_decode(data)
    return imagecodecs.webp_decode(data)


@dataclass(frozen=True)
class ImageCodec(ArrayBytesCodec):
    """Array->bytes codec for chunks of shape ``(1, H, W, C)`` (or ``(1, H, W)``), dtype uint8.

    Attributes:
        format: ``qoi``, ``png``, ``jpeg`` or ``webp``.
        quality: JPEG quality 0-100 (ignored by the lossless formats).
    """

    is_fixed_size = False

    format: str = "png"
    quality: int = 95

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"image codec format {self.format!r} is not one of {FORMATS}")

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> Self:
        _, config = parse_named_configuration(data, CODEC_NAME, require_configuration=False)
        return cls(**(config or {}))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, JSON]:
        return {"name": CODEC_NAME, "configuration": {"format": self.format, "quality": self.quality}}

    def validate(self, *, shape, dtype, chunk_grid) -> None:  # type: ignore[override]
        if dtype.to_native_dtype() != np.dtype("uint8"):
            raise ValueError(f"{CODEC_NAME} needs uint8 data, got {dtype}")
        if self.format == "qoi" and (len(shape) != 4 or shape[-1] not in (3, 4)):
            raise ValueError(f"{CODEC_NAME} format 'qoi' needs (T, H, W, 3|4) frames, got shape {shape}")

    def _encode_sync(self, chunk: np.ndarray) -> bytes:
        if chunk.shape[0] != 1:
            raise ValueError(f"{CODEC_NAME} needs one frame per chunk, got chunk shape {chunk.shape}")
        return _encode_frame(np.ascontiguousarray(chunk[0]), self.format, self.quality)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        encoded = await asyncio.to_thread(self._encode_sync, chunk_array.as_numpy_array())
        return chunk_spec.prototype.buffer.from_bytes(encoded)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        frame = await asyncio.to_thread(decode_frame, chunk_bytes.to_bytes(), self.format)
        frame = np.asarray(frame, dtype=np.uint8).reshape(chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(frame)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError(f"{CODEC_NAME} output size depends on the frame content")


register_codec(CODEC_NAME, ImageCodec)
