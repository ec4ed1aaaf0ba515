"""`digits-cnn`: a small VGG-style CNN for 32x32 RGB digits (about 0.1 M parameters)."""
from __future__ import annotations

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """conv(32)-conv(32)-pool-conv(64)-conv(64)-pool-fc(128)-fc(K); `penultimate` is the 128-d layer."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2),
                                  *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
                                  nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                                  nn.Linear(64 * 16, 128), nn.ReLU(inplace=True))
        self.head = nn.Linear(128, num_classes)

    def penultimate(self, x: torch.Tensor) -> torch.Tensor:
        """The 128-d features the head reads."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
