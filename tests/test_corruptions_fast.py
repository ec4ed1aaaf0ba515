"""The fast backend end to end: runs everywhere, batch-independent, deterministic corruptions match the reference's
pixels, random ones its perturbation statistics; the fidelity report, the suite and the CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from corruption_samples import DIGITS, PHOTO
from robustbench_local.corruptions.api import corrupt_images
from robustbench_local.corruptions.fast import FUNCTIONS, corrupt_tensor
from robustbench_local.corruptions.fast.ops import generators
from robustbench_local.corruptions.fast.params import severity_params
from robustbench_local.corruptions.fidelity import FidelityRow, compare, psnr
from robustbench_local.corruptions.names import ALL, DETERMINISTIC, SEVERITIES
from torch.overrides import TorchFunctionMode

from robustbench_local import evaluate
from robustbench_local.cli import cli

RNG = np.random.default_rng(5)


SMALL = RNG.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)


ODD = RNG.integers(0, 256, (1, 33, 48, 3), dtype=np.uint8)


@pytest.mark.numerics
@pytest.mark.parametrize("params", ["imagenet-c", "cifar-10-c"])
def test_every_corruption_runs_and_is_batch_independent(params):
    for name in ALL:
        for images, severities in ((SMALL, SEVERITIES), (ODD, (5,))):
            ids = np.arange(len(images))
            for s in severities:
                out = corrupt_images(images, name, s, 3, ids, params, backend="fast")
                assert out.shape == images.shape and out.dtype == np.uint8
                alone = corrupt_images(images[-1:], name, s, 3, ids[-1:], params, backend="fast")
                np.testing.assert_array_equal(out[-1:], alone, err_msg=f"{name}/{s} depends on the batch")


@pytest.mark.numerics
@pytest.mark.parametrize("severity", [1, 5])
def test_batch_independent_to_the_last_bit_when_kernels_split_between_threads(severity):
    """The values before rounding to uint8, on images large enough that kernels split between 2 threads at a point
    that depends on the batch: batch-shaped FFT products, matrix products and interpolation differed there."""
    x = torch.from_numpy(RNG.integers(0, 256, (3, 3, 160, 160), dtype=np.uint8)).float().div_(255)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        differ = []
        for name, fn in FUNCTIONS.items():
            c = severity_params("imagenet-c", name, severity)
            out = fn(x, c, generators([1, 2, 3], x.device), "imagenet-c")
            alone = fn(x[-1:].clone(), c, generators([3], x.device), "imagenet-c")
            differ += [name] if not torch.equal(out[-1:], alone) else []
    finally:
        torch.set_num_threads(threads)
    assert not differ


# Calls whose arithmetic may depend on the shape, thread split or memory they are given; reductions and fused
# multiply-adds are exact (so order-free) on integer values.
SHAPE_BOUND = {"matmul", "mm", "bmm", "addmm", "baddbmm", "einsum", "tensordot", "linear", "interpolate", "grid_sample",
               "inverse", "exp", "expm1", "log", "log1p", "log2", "sin", "cos", "tan", "tanh", "sigmoid", "atan2",
               "hypot", "erf", "softmax", "log_softmax", "conv1d", "conv2d", "conv3d"}
EXACT_ON_INTEGERS = {"sum", "mean", "cumsum", "cumprod", "prod", "var", "std", "norm", "dot", "pow", "scatter_add",
                     "index_add", "addcmul", "addcdiv", "lerp"}


class KernelCalls(TorchFunctionMode):
    """Records (name, argument shapes) of every call in SHAPE_BOUND (or fft_* / linalg_*), and of every call in
    EXACT_ON_INTEGERS (or add/sub with an alpha) on floats that are not all integers."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "").rstrip("_")
        tensors = [a for a in (*args, *(v for k, v in kwargs.items() if k != "out")) if isinstance(a, torch.Tensor)]
        fused = name in EXACT_ON_INTEGERS or (name in ("add", "sub") and kwargs.get("alpha", 1) != 1)
        if name in SHAPE_BOUND or name.startswith(("fft_", "linalg_")) or (
                fused and any(t.is_floating_point() and not torch.equal(t, t.round()) for t in tensors)):
            self.calls.append((name, tuple(tuple(t.shape) for t in tensors)))
        return func(*args, **kwargs)


@pytest.mark.parametrize("params", ["imagenet-c", "cifar-10-c"])
def test_every_kernel_sees_each_image_as_if_it_were_alone(params):
    """Batch independence by construction: no FFT, matrix product, grid sample, transcendental function, inexact
    reduction or fused multiply-add runs on batch-shaped values (their results can depend on how a kernel splits the
    batch between threads and SIMD lanes), on any machine."""
    batch = torch.from_numpy(RNG.integers(0, 256, (4, 24, 40, 3), dtype=np.uint8)).permute(0, 3, 1, 2)
    batched = {}
    for name in ALL:
        for s in SEVERITIES:
            traces = []
            for images, seeds in ((batch[-1:], [4]), (batch, [1, 2, 3, 4])):  # alone first: it fills the caches
                with KernelCalls() as log:
                    corrupt_tensor(images, name, s, seeds, params)
                traces.append(log.calls)
            calls = sorted({call for call in traces[1] if call not in traces[0]})
            if calls:
                batched[f"{name}/{s}"] = calls
    assert not batched, f"kernels on the whole batch: {batched}"


@pytest.mark.numerics
@pytest.mark.parametrize("params, images", [("cifar-10-c", DIGITS), ("imagenet-c", DIGITS), ("imagenet-c", PHOTO),
                                            ("cifar-10-c", SMALL), ("imagenet-c", SMALL)],
                         ids=["cifar-digits", "imagenet-digits", "imagenet-224px-photo", "cifar-noise", "imagenet-noise"])
def test_deterministic_corruptions_match_the_reference_pixels(params, images):
    ids = np.arange(len(images))
    for name in sorted(DETERMINISTIC):
        if name == "jpeg_compression" and images is SMALL and params == "imagenet-c":
            continue  # uniform noise at quality <= 25: 38-40 dB (float DCT vs libjpeg's integer islow), see README
        for s in SEVERITIES:
            ref = corrupt_images(images, name, s, 0, ids, params, backend="reference")
            fast = corrupt_images(images, name, s, 0, ids, params, backend="fast")
            assert psnr(ref, fast) >= 40, f"{name}/{s}: {psnr(ref, fast):.1f} dB"


@pytest.mark.numerics
def test_random_corruptions_match_the_reference_statistics(digits_test):
    """The fidelity report on a small set (96 digits, CIFAR-10-C parameters; one 224 px photo, ImageNet-C, for the
    per-pixel random corruptions): 10% instead of the full split's 5%, since fewer draws average less."""
    data = digits_test.limit(96)
    rows = compare(data.images, data.ids, 0, "cifar-10-c", severities=(1, 3, 5),
                   corruptions=tuple(n for n in ALL if n not in DETERMINISTIC))
    rows += compare(PHOTO, np.arange(1), 0, "imagenet-c", severities=(2, 5),
                    corruptions=("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "snow",
                                 "elastic_transform", "spatter"))
    failed = [(r.corruption, r.severity, r.mean_ref, r.mean_fast, r.std_ref, r.std_fast) for r in rows
              if not r.within(0.10)]
    assert not failed


def test_fidelity_row_bounds_by_hand():
    assert FidelityRow("contrast", 1, 40.0, 0, 0, 1, 1).passed
    assert not FidelityRow("contrast", 1, 39.9, 0, 0, 1, 1).passed
    # random: mean within 5% of the reference RMS (here 5), std within 5% of the reference std (here 4)
    assert FidelityRow("fog", 1, 10.0, 3.0, 3.24, 4.0, 4.19).passed
    assert not FidelityRow("fog", 1, 10.0, 3.0, 3.26, 4.0, 4.0).passed
    assert not FidelityRow("fog", 1, 10.0, 3.0, 3.0, 4.0, 4.21).passed
    assert psnr(np.zeros(4, np.uint8), np.full(4, 255, np.uint8)) == pytest.approx(0.0)


def test_corrupt_tensor_stays_on_the_input_device():
    x = torch.from_numpy(SMALL).permute(0, 3, 1, 2)
    out = corrupt_tensor(x, "fog", 2, [1, 2, 3], "cifar-10-c")
    assert out.device == x.device and out.dtype == torch.uint8 and out.shape == x.shape


@pytest.mark.numerics
def test_suite_fast_backend_agrees_with_reference(digits_model, digits_test, tmp_path):
    data = digits_test.limit(120)
    acc = {}
    for backend in ("reference", "fast"):
        run = evaluate(digits_model, data, suites=["corruptions"], out=tmp_path / backend, backend=backend,
                       corruptions="contrast,zoom_blur,gaussian_noise,fog", severities="2,5", corruption_workers="0")
        acc[backend] = run.metrics.set_index(["condition", "metric"]).value
    for c in ("contrast", "zoom_blur"):  # deterministic: the same images, the same predictions
        for s in (2, 5):
            assert acc["fast"][f"{c}/{s}", "acc"] == pytest.approx(acc["reference"][f"{c}/{s}", "acc"], abs=1 / 120)
    # independent oracle for the fast path: the backend's images through Classifier.predict
    images = corrupt_images(data.images, "fog", 5, 0, data.ids, "cifar-10-c", backend="fast")
    assert acc["fast"]["fog/5", "acc"] == pytest.approx(float((digits_model.predict(images).argmax(1)
                                                               == data.labels).mean()))
    gap = abs(acc["fast"]["common", "mean_corruption_acc"] - acc["reference"]["common", "mean_corruption_acc"])
    assert gap <= 0.03


def test_cli_validate_prints_the_table(tmp_path):
    result = CliRunner().invoke(cli, ["--quiet", "corrupt", "builtin:digits", "--validate", "--limit", "16",
                                      "--corruptions", "contrast,pixelate", "--severities", "1,5",
                                      "--model", "builtin:digits-cnn"])
    assert result.exit_code == 0, result.output
    assert "fidelity: PASS" in result.stdout and "pixelate             5  det" in result.stdout
    result = CliRunner().invoke(cli, ["--quiet", "corrupt", "builtin:digits", "--backend", "fast", "--corruption",
                                      "snow", "--severity", "2", "--limit", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0 and "fast backend" in result.stdout
    result = CliRunner().invoke(cli, ["--quiet", "corrupt", "builtin:digits", "--corruption", "snow"])
    assert result.exit_code == 2 and "missing --severity, --out" in result.stderr
