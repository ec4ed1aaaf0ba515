"""Severity parameters of both sets, indexed [corruption][severity - 1]: ImageNet-C's (as imagecorruptions 1.1.2
hard-codes them inside its functions) and CIFAR-10-C's (`corruptions.cifar.TABLE`)."""
from __future__ import annotations

import numpy as np

from ..cifar import TABLE as CIFAR_10_C

IMAGENET_C: dict[str, list] = {
    "gaussian_noise": [.08, .12, .18, .26, .38],
    "shot_noise": [60, 25, 12, 5, 3],
    "impulse_noise": [.03, .06, .09, .17, .27],
    "speckle_noise": [.15, .2, .35, .45, .6],
    "gaussian_blur": [1, 2, 3, 4, 6],
    "glass_blur": [(.7, 1, 2), (.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
    "defocus_blur": [(3, .1), (4, .5), (6, .5), (8, .5), (10, .5)],
    "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
    "zoom_blur": [np.arange(1, 1.11, .01), np.arange(1, 1.16, .01), np.arange(1, 1.21, .02),
                  np.arange(1, 1.26, .02), np.arange(1, 1.31, .03)],
    "snow": [(.1, .3, 3, .5, 10, 4, .8), (.2, .3, 2, .5, 12, 4, .7), (.55, .3, 4, .9, 12, 8, .7),
             (.55, .3, 4.5, .85, 12, 8, .65), (.55, .3, 2.5, .85, 12, 12, .55)],
    "frost": [(1, .4), (.8, .6), (.7, .7), (.65, .7), (.6, .75)],
    "fog": [(1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4)],
    "brightness": [.1, .2, .3, .4, .5],
    "contrast": [.4, .3, .2, .1, .05],
    "elastic_transform": [250 * .05, 250 * .065, 250 * .085, 250 * .1, 250 * .12],  # alpha
    "pixelate": [.6, .5, .4, .3, .25],
    "jpeg_compression": [25, 18, 15, 10, 7],
    "spatter": [(.65, .3, 4, .69, .6, 0), (.65, .3, 3, .68, .6, 0), (.65, .3, 2, .68, .5, 0),
                (.65, .3, 1, .65, 1.5, 1), (.67, .4, 1, .65, 1.5, 1)],
    "saturate": [(.3, 0), (.1, 0), (2, 0), (5, .1), (20, .2)],
}
TABLES = {"imagenet-c": IMAGENET_C, "cifar-10-c": CIFAR_10_C}


def severity_params(params: str, corruption: str, severity: int):
    """The parameter tuple of `corruption` at `severity` in set `params`."""
    return TABLES[params][corruption][severity - 1]
