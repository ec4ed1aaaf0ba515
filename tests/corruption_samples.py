"""Images shared by the fast-corruption tests: eight built-in digits (32 px) and one 224 px photo."""
from __future__ import annotations

import cv2
import skimage.data

from robustbench_local.data import load_data

DIGITS = load_data("builtin:digits", "test", 8).images
PHOTO = cv2.resize(skimage.data.astronaut(), (224, 224), interpolation=cv2.INTER_AREA)[None]
