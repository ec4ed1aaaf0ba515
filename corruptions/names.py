"""Corruption names, categories, parameter-set names, and the parsers for --corruptions / --severities."""
from __future__ import annotations

from robustbench_local.errors import SpecError

# imagecorruptions' `corruption_tuple` order (corruption_number 0..18): 15 common, then 4 validation.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
    "validation": ("speckle_noise", "gaussian_blur", "spatter", "saturate"),
}
COMMON: tuple[str, ...] = sum((CATEGORIES[c] for c in ("noise", "blur", "weather", "digital")), ())
VALIDATION: tuple[str, ...] = CATEGORIES["validation"]
ALL: tuple[str, ...] = COMMON + VALIDATION
SUBSETS: dict[str, tuple[str, ...]] = {"common": COMMON, "all": ALL, **CATEGORIES}
SEVERITIES = (1, 2, 3, 4, 5)
# Randomness-free corruptions (the same output whatever the seed).
DETERMINISTIC = frozenset({"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression",
                           "gaussian_blur", "saturate"})

PARAM_SETS = {
    "imagenet-c": "imagecorruptions' (= ImageNet-C's) parameters, meant for images around 224 px",
    "cifar-10-c": "Hendrycks' CIFAR-10-C parameters, meant for 32 px images",
}
PARAMS_SIZE_CUTOFF = 64  # images whose shorter side is <= this get cifar-10-c by default


def category_of(name: str) -> str:
    """'noise', 'blur', 'weather', 'digital' or 'validation'."""
    return next(cat for cat, names in CATEGORIES.items() if name in names)


def check_corruption(name: str) -> str:
    """`name` if it is a known corruption, else a SpecError naming the known ones."""
    if name not in ALL:
        raise SpecError(f"unknown corruption {name!r}; known: {', '.join(ALL)} (see `rbl list corruptions`)")
    return name


def check_severity(severity: int) -> int:
    """`severity` if it is an integer 1..5, else a SpecError."""
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITIES:
        raise SpecError(f"severity must be an integer from 1 to 5, got {severity!r}")
    return severity


def check_params(name: str) -> str:
    """`name` if it is a known parameter set, else a SpecError."""
    if name not in PARAM_SETS:
        raise SpecError(f"unknown corruption parameter set {name!r}; known: {', '.join(PARAM_SETS)}")
    return name


def parse_corruptions(text: str) -> tuple[str, ...]:
    """'common', 'all', a category ('noise', 'validation', ...) or comma-separated names, in canonical order."""
    chosen: set[str] = set()
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        chosen.update(SUBSETS[part] if part in SUBSETS else (check_corruption(part),))
    if not chosen:
        raise SpecError("empty corruption list; give common, all, a category or corruption names")
    return tuple(n for n in ALL if n in chosen)


def parse_severities(text: str) -> tuple[int, ...]:
    """'1-5', '3', '1,3,5' or '2-4' -> sorted severities, each 1..5."""
    chosen: set[int] = set()
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            values = range(int(low), int(high) + 1) if dash else [int(low)]
        except ValueError:
            raise SpecError(f"cannot read severities {text!r}; use e.g. 1-5, 3 or 1,3,5") from None
        if not values:
            raise SpecError(f"empty severity range {part!r}; use e.g. 1-5")
        chosen.update(check_severity(v) for v in values)
    if not chosen:
        raise SpecError("empty severity list; use e.g. 1-5, 3 or 1,3,5")
    return tuple(sorted(chosen))


def default_params(height: int, width: int) -> str:
    """The parameter set for images of this size: cifar-10-c up to 64 px (shorter side), else imagenet-c."""
    return "cifar-10-c" if min(height, width) <= PARAMS_SIZE_CUTOFF else "imagenet-c"
