"""Image augmentation for training camera policies: random shift (DrQ, robomimic's crop randomiser).

Legend: ``B`` batch, ``C`` channels, ``h``/``w`` image height and width.

A random shift pads an image by ``pad`` pixels on every side, repeating the border pixels, and crops an
``h x w`` window back at a random offset in ``0..2 pad`` along each axis (Kostrikov et al., DrQ, 2020:
``pad = 4`` at 84x84). Equivalently every output pixel reads the input pixel ``(i + dy, j + dx)``, clamped
to the image, with one integer shift ``dy, dx`` in ``-pad..pad`` per image. The images keep their dtype
(uint8 frames stay uint8), so a minibatch is augmented before the policy converts it to floats.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["random_shift", "shift_images"]


def shift_images(images: Tensor, shifts: Tensor) -> Tensor:
    """Shift each image by its own integer offset, repeating the border pixels.

    Args:
        images: ``(B, C, h, w)``, any dtype.
        shifts: ``(B, 2)`` integer ``(dy, dx)``: output pixel ``(i, j)`` of image ``b`` is input pixel
            ``(clamp(i + dy, 0, h - 1), clamp(j + dx, 0, w - 1))``.

    Returns:
        ``(B, C, h, w)``, same dtype as ``images``.
    """
    b, c, h, w = images.shape
    shifts = shifts.to(torch.long)
    rows = (torch.arange(h)[None] + shifts[:, :1]).clamp(0, h - 1)  # (B, h)
    cols = (torch.arange(w)[None] + shifts[:, 1:]).clamp(0, w - 1)  # (B, w)
    out = images.gather(2, rows[:, None, :, None].expand(b, c, h, w))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def random_shift(images: Tensor, pad: int, generator: torch.Generator | None = None) -> Tensor:
    """DrQ's random shift: replicate-pad by ``pad`` pixels, crop back at a random offset (per image).

    Args:
        images: ``(B, C, h, w)``, any dtype.
        pad: the largest shift in pixels (0 returns ``images`` unchanged).
        generator: the random source of the shifts (None: torch's global one).

    Returns:
        ``(B, C, h, w)``, same dtype as ``images``.

    Raises:
        ValueError: a negative ``pad``.
    """
    if pad < 0:
        raise ValueError(f"image shift must be >= 0 pixels, got {pad}")
    if pad == 0:
        return images
    shifts = torch.randint(-pad, pad + 1, (images.shape[0], 2), generator=generator)
    return shift_images(images, shifts)
