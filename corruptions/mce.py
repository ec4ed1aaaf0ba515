"""Corruption Error against AlexNet (Hendrycks & Dietterich 2019).

AlexNet's errors were measured on the released ImageNet-C JPEGs; normalising errors on on-the-fly
corruptions (or on another data set) by them mixes two distributions, so read `mce_alexnet` as a
convention, not as a number comparable to published ones.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from .names import COMMON

ALEXNET_CLEAN_ERR = 0.4348
# Top-1 error of AlexNet per corruption, severities 1..5 (hendrycks/robustness README @ 76d9393).
ALEXNET_ERR: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.94870, 0.98720, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.58430, 0.70048, 0.82108, 0.89750, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.91870, 0.94952),
    "frost": (0.61390, 0.79734, 0.88790, 0.89942, 0.93430),
    "fog": (0.67474, 0.76050, 0.84378, 0.87260, 0.94500),
    "brightness": (0.45140, 0.48502, 0.54048, 0.62166, 0.72440),
    "contrast": (0.64548, 0.76150, 0.88874, 0.97760, 0.99270),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.54620, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
    "speckle_noise": (0.66192, 0.74440, 0.90246, 0.94548, 0.97268),
    "gaussian_blur": (0.54732, 0.70444, 0.82574, 0.89864, 0.95940),
    "spatter": (0.47196, 0.62194, 0.75052, 0.84132, 0.90182),
    "saturate": (0.59342, 0.65514, 0.51174, 0.70834, 0.82260),
}


def _out(x: np.ndarray) -> float | np.ndarray:
    return float(x) if np.ndim(x) == 0 else x


def ce_alexnet(errors: ArrayLike, corruption: str) -> float | np.ndarray:
    """CE_c = sum_s E_{s,c} / sum_s E^AlexNet_{s,c} over severities 1..5 (axis 0 of `errors`; further axes, e.g.
    bootstrap replicates, are kept)."""
    return _out(np.sum(errors, axis=0) / np.sum(ALEXNET_ERR[corruption]))


def relative_ce_alexnet(errors: ArrayLike, clean_error: float | np.ndarray, corruption: str) -> float | np.ndarray:
    """rCE_c = sum_s (E_{s,c} - E_clean) / sum_s (E^AlexNet_{s,c} - E^AlexNet_clean) (severities on axis 0)."""
    alex = np.asarray(ALEXNET_ERR[corruption])
    return _out(np.sum(np.asarray(errors) - clean_error, axis=0) / np.sum(alex - ALEXNET_CLEAN_ERR))


def mce_alexnet(errors: Mapping[str, ArrayLike]) -> float | np.ndarray:
    """Mean CE over the 15 common corruptions; `errors[c]` holds E_{s,c} for severities 1..5 on axis 0."""
    return _out(np.mean([ce_alexnet(errors[c], c) for c in COMMON], axis=0))


def relative_mce_alexnet(errors: Mapping[str, ArrayLike], clean_error: float | np.ndarray) -> float | np.ndarray:
    """Mean rCE over the 15 common corruptions."""
    return _out(np.mean([relative_ce_alexnet(errors[c], clean_error, c) for c in COMMON], axis=0))


__all__ = [
    "ALEXNET_CLEAN_ERR",
    "ALEXNET_ERR",
    "ce_alexnet",
    "mce_alexnet",
    "relative_ce_alexnet",
    "relative_mce_alexnet",
]
