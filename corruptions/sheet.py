"""Pictures for a look: corrupted images as PNG files, and a contact sheet of every corruption x severity."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .api import corrupt_images
from .names import ALL, SEVERITIES

LABEL_WIDTH = 130


def write_pngs(images: np.ndarray, ids: np.ndarray, folder: Path) -> list[Path]:
    """One PNG per image, named after its sample id (characters outside [A-Za-z0-9._-] become '_')."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for image, sample_id in zip(images, ids.tolist()):
        path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", str(sample_id)).strip("_") + ".png")
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def contact_sheet(image: np.ndarray, sample_id: str, seed: int, params: str, min_cell: int = 96) -> Image.Image:
    """A grid: one row per corruption (all 19), columns clean then severities 1..5, cells >= `min_cell` px."""
    h, w = image.shape[:2]
    scale = max(1, -(-min_cell // min(h, w)))
    cell_h, cell_w = h * scale, w * scale
    sheet = Image.new("RGB", (LABEL_WIDTH + cell_w * 6, 16 + cell_h * len(ALL)), "white")
    draw = ImageDraw.Draw(sheet)
    for col, title in enumerate(["clean"] + [f"severity {s}" for s in SEVERITIES]):
        draw.text((LABEL_WIDTH + col * cell_w + 2, 2), title, fill="black")
    ids = np.array([sample_id])
    for row, name in enumerate(ALL):
        top = 16 + row * cell_h
        draw.text((2, top + cell_h // 2 - 5), name, fill="black")
        cells = [image] + [corrupt_images(image[None], name, s, seed, ids, params)[0] for s in SEVERITIES]
        for col, cell in enumerate(cells):
            tile = Image.fromarray(cell).resize((cell_w, cell_h), Image.NEAREST)
            sheet.paste(tile, (LABEL_WIDTH + col * cell_w, top))
    return sheet
