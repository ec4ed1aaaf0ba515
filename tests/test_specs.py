"""Spec strings: every scheme declares the options it reads; anything else is refused with the closest name."""
from __future__ import annotations

import re

import pytest
from foundation_helpers import assert_one_line_error, run_rbl

from robustbench_local import load_data, load_model
from robustbench_local.errors import SpecError
from robustbench_local.models import LOADERS, OPTIONS
from robustbench_local.registry import DATA_SCHEMES
from robustbench_local.specs import Spec, check_options, parse_spec

SCHEMES = {"imagefolder": ("resize", "crop"), "npz": (), "python": None}


def test_parse_spec_splits_and_keeps_declared_options():
    spec = parse_spec("imagefolder:/data/val?resize=256&crop=224", "data", SCHEMES)
    assert spec == Spec("imagefolder", "/data/val", {"resize": "256", "crop": "224"})
    assert str(spec) == "imagefolder:/data/val?resize=256&crop=224"
    assert parse_spec("python:pkg.mod:make?anything=1", "model", SCHEMES).options == {"anything": "1"}


@pytest.mark.parametrize("text, needle", [
    ("imagefolder:DIR?resise=256", "unknown option ?resise= for imagefolder: specs; did you mean ?resize=? "
                                   "(it takes ?crop=, ?resize=)"),
    ("npz:FILE?limit=3", "unknown option ?limit= for npz: specs (it takes no options)"),
    ("imagefolder:DIR?resize=256&resize=128", "gives ?resize= more than once; keep one"),
    ("onnx:model.onnx", "unknown data spec 'onnx:model.onnx'"),
])
def test_parse_spec_refuses_what_a_scheme_does_not_read(text, needle):
    with pytest.raises(SpecError, match=re.escape(needle)):
        parse_spec(text, "data", SCHEMES)


def test_check_options_suggests_the_closest_name():
    check_options({"width": "2"}, {"width", "depth"}, "python:m:f")
    with pytest.raises(SpecError, match=re.escape("?widht= for python:m:f; did you mean ?width=?")):
        check_options({"widht": "2"}, {"width", "depth"}, "python:m:f")


def test_every_model_scheme_declares_its_options():
    assert OPTIONS.keys() == LOADERS.keys()


@pytest.mark.parametrize("spec, needle", [
    ("torchvision:resnet18?num_clases=10", "did you mean ?num_classes=?"),
    ("builtin:digits-cnn?features=head", "unknown option ?features= for builtin: specs"),
    ("timm:resnet18?feature=x", "unknown option ?feature= for timm: specs"),
    ("torchscript:net.ts?weights=w.pt", "unknown option ?weights= for torchscript: specs"),
    ("export:net.pt2?input_size=32", "unknown option ?input_size= for export: specs"),
    ("builtin:digits-cnn?norm=none&norm=imagenet", "?norm= more than once"),
])
def test_model_specs_refuse_undeclared_options(spec, needle):
    with pytest.raises(SpecError, match=re.escape(needle)):
        load_model(spec)


def test_arch_takes_no_weights(tmp_path):
    with pytest.raises(SpecError, match=re.escape("drop ?weights=")):
        load_model(str(tmp_path / "w.safetensors"), arch=f"builtin:digits-cnn?weights={tmp_path / 'other.pt'}")
    with pytest.raises(SpecError, match=re.escape("did you mean ?num_classes=?")):
        load_model(str(tmp_path / "w.safetensors"), arch="torchvision:resnet18?numclasses=10")


def test_data_specs_declare_what_their_readers_read(tmp_path):
    assert set(DATA_SCHEMES) == {"builtin", "cifar10", "imagefolder", "imagenet", "npz", "cifar10c", "imagenetc"}
    assert set(DATA_SCHEMES.get("imagenetc").meta["options"]) == {"corruptions", "severities", "resize", "crop", "interpolation"}
    assert set(DATA_SCHEMES.get("cifar10c").meta["options"]) == {"corruptions", "severities", "num_classes"}
    for spec, needle in [(f"imagefolder:{tmp_path}?resise=256", "did you mean ?resize=?"),
                         ("builtin:digits?limit=3", "unknown option ?limit= for builtin: specs"),
                         (f"cifar10c:{tmp_path}?severity=1", "did you mean ?severities=?"),
                         (f"imagenetc:{tmp_path}?corruption=fog", "did you mean ?corruptions=?")]:
        with pytest.raises(SpecError, match=re.escape(needle)):
            load_data(spec)


def test_cli_unknown_options_are_one_line_exit_2(tmp_path):
    base = ["evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--limit", "8", "--out", str(tmp_path / "r")]
    assert_one_line_error(run_rbl(*base[:1], "torchvision:resnet18?num_clases=10", *base[2:]), "?num_classes=")
    assert_one_line_error(run_rbl(*base[:3], f"imagefolder:{tmp_path}?resise=32", *base[4:]), "?resize=")
    assert_one_line_error(run_rbl(*base, "--suite", "ood", "--ood-data", f"imagefolder:{tmp_path}?croop=32"),
                          "did you mean ?crop=?")
    assert not (tmp_path / "r").exists()
