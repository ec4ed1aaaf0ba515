"""The literature defaults of every detector, in one place (sources: ../shared/reference/ood_calibration.md §1)."""
from __future__ import annotations

ENERGY_TEMPERATURE = 1.0      # Liu et al. 2020 (energy), OpenOOD `ebo`, pytorch-ood `EnergyBased`
ODIN_TEMPERATURE = 1000.0     # Liang et al. 2018, OpenOOD `odin.yml`, pytorch-ood `ODIN`
ODIN_EPS = 0.0014             # input step in [0,1] pixel units (see ood/detectors/odin.py for the std choice)
KNN_K = 50                    # Sun et al. 2022, OpenOOD `knn.yml`, pytorch-ood 0.4 `KNN`
REACT_PERCENTILE = 90.0       # Sun et al. 2021; OpenOOD clips pooled features at this ID-val percentile
VIM_DIM_RULE = ((2048, 1000), (768, 512))  # Wang et al. 2022: principal dim by feature width, else width // 2
GEN_GAMMA = 0.1               # Liu et al. 2023 (GEN), OpenOOD `gen.yml`
GEN_TOP_M = 100               # top-M classes (all classes when K < M)
DICE_PERCENTILE = 90.0        # Sun & Li 2022, OpenOOD `dice.yml` (weight sparsity p)
ASH_PERCENTILE = 90.0         # Djurisic et al. 2023, OpenOOD `ash.yml` (ASH-B on pooled features)


def vim_dim(width: int) -> int:
    """ViM's principal-subspace dimension for penultimate features of `width`."""
    for min_width, dim in VIM_DIM_RULE:
        if width >= min_width:
            return dim
    return width // 2
