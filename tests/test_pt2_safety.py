"""`export:PATH.pt2` never unpickles foreign objects unless --trust-checkpoint: tampered archives are refused."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch
from foundation_helpers import assert_one_line_error, run_rbl

from robustbench_local import load_model
from robustbench_local.errors import CheckpointRefused

SAMPLE_INPUTS = "data/sample_inputs/model.pt"
WEIGHTS_CONFIG = "data/weights/model_weights_config.json"


class Payload:
    """Unpickling runs `eval`: it creates `marker`, then returns `result` (an expression) so loading goes on."""

    def __init__(self, marker: Path, result: str) -> None:
        self.marker, self.result = marker, result

    def __reduce__(self):
        return eval, (f"(open({str(self.marker)!r}, 'w').close(), {self.result})[1]",)


def pickled(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def clean_pt2(tmp_path_factory, digits_model) -> Path:
    path = tmp_path_factory.mktemp("pt2") / "digits.pt2"
    batch = torch.export.Dim("batch", min=1, max=512)
    torch.export.save(torch.export.export(digits_model.net, (torch.rand(4, 3, 32, 32),),
                                          dynamic_shapes={"x": {0: batch}}), path)
    return path


def tampered(src: Path, dst: Path, replace: dict[str, bytes], add: dict[str, bytes] | None = None) -> Path:
    """A copy of the archive `src` with members (named below its root folder) replaced or added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        root = zin.namelist()[0].split("/", 1)[0]
        for info in zin.infolist():
            zout.writestr(info.filename, replace.get(info.filename.split("/", 1)[1], zin.read(info)))
        for name, body in (add or {}).items():
            zout.writestr(f"{root}/{name}", body)
    return dst


def member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith(f"/{name}")))


def evaluate(model: str, out: Path, *extra: str):
    return run_rbl("evaluate", model, "--data", "builtin:digits", "--limit", "8", "--out", str(out), *extra)


def evil_sample_inputs(clean: Path, tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    payload = Payload(marker, "((__import__('torch').zeros(4, 3, 32, 32),), {})")
    return tampered(clean, tmp_path / "evil.pt2", {SAMPLE_INPUTS: pickled(payload)}), marker


def evil_weight(clean: Path, tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    config = json.loads(member(clean, WEIGHTS_CONFIG))
    entry = config["config"]["head.bias"]
    entry["use_pickle"] = True
    payload = Payload(marker, "__import__('torch').zeros(10)")
    return tampered(clean, tmp_path / "evil.pt2", {WEIGHTS_CONFIG: json.dumps(config).encode(),
                                                   f"data/weights/{entry['path_name']}": pickled(payload)}), marker


@pytest.mark.parametrize("tamper", [evil_sample_inputs, evil_weight], ids=["sample inputs", "use_pickle weight"])
def test_pickled_members_are_refused_in_one_line_and_never_run(tamper, clean_pt2, tmp_path):
    path, marker = tamper(clean_pt2, tmp_path)
    assert_one_line_error(evaluate(f"export:{path}?norm=none", tmp_path / "run"), "refusing", "--trust-checkpoint")
    with pytest.raises(CheckpointRefused, match="pickled|not plain"):
        load_model(f"export:{path}?norm=none")
    assert not marker.exists()


def test_trust_checkpoint_loads_a_pickled_archive(clean_pt2, tmp_path):
    path, marker = evil_sample_inputs(clean_pt2, tmp_path)
    outcome = evaluate(f"export:{path}?norm=none", tmp_path / "run", "--trust-checkpoint")
    assert outcome.exit_code == 0, outcome.stderr
    assert marker.exists()  # the user vouched for the file: torch's own loading ran its pickle


@pytest.mark.parametrize("extra", [
    {"data/constants/opaque_obj_0": b"\x80\x04N."},  # unpickled with pickle.loads
    {"data/aotinductor/model/model.so": b"\x7fELF"},  # a shared library torch would load
    {"data/weights/model.pt": b"\x80\x04N."},  # the legacy pickled state dict
    {"version": b"1"},  # the pre-2.7 layout torch reads with pickles
], ids=["opaque object", "aotinductor", "legacy weights", "old layout"])
def test_members_outside_the_plain_layout_are_refused(extra, clean_pt2, tmp_path):
    path = tampered(clean_pt2, tmp_path / "extra.pt2", {}, add=extra)
    assert_one_line_error(evaluate(f"export:{path}?norm=none", tmp_path / "run"), "refusing", next(iter(extra)))


def test_duplicate_members_are_refused(clean_pt2, tmp_path):
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = tampered(clean_pt2, tmp_path / "dup.pt2", {}, add={"byteorder": b"little"})
    with pytest.raises(CheckpointRefused, match="duplicate"):
        load_model(f"export:{path}?norm=none")


def test_pickled_constant_config_is_refused(clean_pt2, tmp_path):
    config = {"config": {"obj": {"path_name": "custom_obj_0", "is_param": False, "use_pickle": False,
                                 "tensor_meta": None}}}
    path = tampered(clean_pt2, tmp_path / "const.pt2",
                    {"data/constants/model_constants_config.json": json.dumps(config).encode()})
    with pytest.raises(CheckpointRefused, match="custom_obj_0"):
        load_model(f"export:{path}?norm=none")


def test_clean_export_evaluates_untrusted(clean_pt2, tmp_path, digits_model, digits_test):
    outcome = evaluate(f"export:{clean_pt2}?norm=none", tmp_path / "run")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stderr.strip() == ""
    model = load_model(f"export:{clean_pt2}?norm=none")
    with torch.no_grad():
        x = torch.rand(5, 3, 32, 32)
        assert torch.allclose(model(x), digits_model.net(x), atol=1e-5)
