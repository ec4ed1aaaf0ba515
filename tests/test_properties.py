"""Property-based tests of every parser of user input: any text gives a valid object or a one-line RBLError.

Nothing here loads a model or reads data: the model and data properties use only specs that are refused
before a file is opened (unknown names, paths that do not exist).
"""
from __future__ import annotations

import math
import string

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from robustbench_local.attacks.entries import COMPOSITES
from robustbench_local.attacks.registry import AttackConfig, parse_sequence
from robustbench_local.attacks.suite import parse_eps_list
from robustbench_local.attacks.threat import check_radius, parse_eps
from robustbench_local.corruptions.names import ALL, SUBSETS, parse_corruptions, parse_severities

from robustbench_local.data import load_data, parse_data_spec
from robustbench_local.data.builtin import builtin_datasets
from robustbench_local.errors import RBLError
from robustbench_local.models import BUILTIN_MODELS, OPTIONS, load_model
from robustbench_local.models.loaders import COMMON_OPTIONS, NORMALISATIONS, _input_size, _int, normalisation
from robustbench_local.registry import ATTACKS, DATA_SCHEMES
from robustbench_local.runner import EvalSpec, resolve_options
from robustbench_local.specs import Spec, parse_spec
from robustbench_local.suites import all_suites

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,  # the same examples every run
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SYMBOLS = "?&=:,+/-._ "
NUMBERS = st.one_of(st.sampled_from(["0", "1", "8/255", "1/0", "1e9999999", "nan", "²", "٣", "１２", "0x10", "-0", " 3 ",
                                     "99999999999999999999"]),
                    st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True).map(str))


def words(*vocabulary: str) -> st.SearchStrategy[str]:
    """Text built from `vocabulary`, numbers, spec punctuation and any characters, in any order."""
    token = st.one_of(st.sampled_from(vocabulary or ("x",)), NUMBERS, st.sampled_from(list(SYMBOLS)),
                      st.text(max_size=4))
    return st.one_of(st.text(), st.lists(token, max_size=12).map("".join))


def query(keys) -> st.SearchStrategy[str]:
    pair = st.tuples(st.one_of(st.sampled_from(sorted(keys)), st.text(max_size=5)),
                     st.one_of(NUMBERS, st.lists(NUMBERS, min_size=1, max_size=3).map(",".join), st.text()))
    return st.lists(pair, max_size=4).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))


def spec_texts(schemes, targets, keys) -> st.SearchStrategy[str]:
    structured = st.builds(lambda s, t, q: f"{s}:{t}" + (f"?{q}" if q else ""),
                           st.one_of(st.sampled_from(sorted(schemes)), st.text(max_size=6)),
                           st.one_of(st.sampled_from(sorted(targets)), st.text(max_size=8)), query(keys))
    return st.one_of(st.text(), structured)


def assert_refused_in_one_line(call) -> object | None:
    """Call; an RBLError must be one line. Any other exception fails the property."""
    try:
        return call()
    except RBLError as exc:
        assert "\n" not in str(exc) and str(exc).strip(), repr(str(exc))
        return None


MODEL_SCHEMES = OPTIONS  # scheme -> the ?options it reads
SCHEMES = {entry.name: entry.meta["options"] for entry in DATA_SCHEMES.entries()}
DATA_OPTIONS = {name for options in SCHEMES.values() for name in options}
BUILTIN_DATASETS = builtin_datasets()


@FUZZ
@given(spec_texts(MODEL_SCHEMES, BUILTIN_MODELS, COMMON_OPTIONS))
@example("builtin:digits-cnn?std=0")
@example("torchvision:x?mean=nan")
@example("builtin:x?num_classes=²")
def test_model_specs_parse_or_fail_in_one_line(text):
    def parse():
        spec = parse_spec(text, "model", MODEL_SCHEMES)
        assert isinstance(spec, Spec) and spec.scheme in MODEL_SCHEMES and spec.target
        mean, std = normalisation(spec, NORMALISATIONS["none"])
        assert len(mean) == len(std) == 3 and all(s > 0 and math.isfinite(s) for s in std)
        for key in ("num_classes", "input_size"):
            value = _int(spec, key, None)
            assert value is None or value >= 1
        _input_size(spec, None)
        return spec

    assert_refused_in_one_line(parse)


@FUZZ
@given(st.one_of(
    st.builds("builtin:{}{}".format, words("digits-cnn", "digits").filter(lambda t: t not in BUILTIN_MODELS),
              st.one_of(st.just(""), query(COMMON_OPTIONS).map("?{}".format))),
    st.builds("{}:/nonexistent/{}".format, st.sampled_from(["torchscript", "export"]), st.text()),
    st.builds("{}{}".format, st.text(), st.sampled_from([".safetensors", ".pt", ".pth", ".bin"])),
    words("onnx", "tf", ":").filter(lambda t: t.split(":", 1)[0] not in MODEL_SCHEMES),
))
@example("torchscript:/nonexistent/\n")
@example("\n.safetensors")
def test_model_specs_refused_before_any_file_is_read(text):
    assert assert_refused_in_one_line(lambda: load_model(text, device="cpu")) is None


@FUZZ
@given(st.one_of(
    spec_texts(SCHEMES, BUILTIN_DATASETS, DATA_OPTIONS),
    st.builds("imagefolder:/nonexistent?{}".format, query(DATA_OPTIONS)),
    st.builds("{}:/nonexistent/{}?{}".format, st.sampled_from(sorted(set(SCHEMES) - {"builtin"})), st.text(),
              query(DATA_OPTIONS)),
))
@example("cifar10:\n")
@example("imagefolder:/nonexistent?resize=²")
def test_data_specs_parse_or_are_refused_before_reading(text):
    spec = assert_refused_in_one_line(lambda: parse_data_spec(text))
    if spec is None:
        return
    assert spec.scheme in SCHEMES and spec.target
    if spec.scheme != "builtin" or spec.target not in BUILTIN_DATASETS:
        assert assert_refused_in_one_line(lambda: load_data(text)) is None


@FUZZ
@given(words(*ATTACKS, *COMPOSITES, *{k for e in ATTACKS.entries() for k in e.meta['defaults']}, "none", "random", "auto"))
def test_attack_sequences_parse_or_fail_in_one_line(text):
    members = assert_refused_in_one_line(lambda: parse_sequence(text))
    if members is not None:
        assert members and all(isinstance(m, AttackConfig) and m.name in ATTACKS for m in members)


@FUZZ
@given(words(), st.sampled_from(["Linf", "L2"]))
@example("1e9999999", "Linf")
@example("2", "Linf")
@example("2", "L2")
def test_eps_lists_parse_or_fail_in_one_line(text, norm):
    radii = assert_refused_in_one_line(lambda: parse_eps_list(text))
    if radii is not None:
        values = [parse_eps(r) for r in radii]
        assert radii and values == sorted(set(values)) and all(v >= 0 for v in values)
        for radius, value in zip(radii, values):
            assert_refused_in_one_line(lambda radius=radius, value=value: check_radius(norm, value, radius))


@FUZZ
@given(words("1", "5", "-", ","))
def test_severities_parse_or_fail_in_one_line(text):
    levels = assert_refused_in_one_line(lambda: parse_severities(text))
    if levels is not None:
        assert levels and list(levels) == sorted(set(levels)) and set(levels) <= {1, 2, 3, 4, 5}


@FUZZ
@given(words(*ALL, *SUBSETS, ","))
def test_corruption_lists_parse_or_fail_in_one_line(text):
    names = assert_refused_in_one_line(lambda: parse_corruptions(text))
    if names is not None:
        assert names and set(names) <= set(ALL)


OPTION_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), words()),
                             lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                             max_leaves=8)
OPTIONS = {opt.name for suite in all_suites() for opt in suite.options}


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(OPTIONS)), OPTION_VALUES, max_size=4))
@example({"corruption_workers": "²"})
@example({"eps": [0.1, True]})
@example({"steps": {"a": 1}})
def test_every_suite_option_reads_or_fails_in_one_line(given_options):
    resolved = assert_refused_in_one_line(lambda: resolve_options(all_suites(), given_options))
    if resolved is not None:
        assert set(resolved) == OPTIONS


FIELDS = ["model", "data", "suites", "seed", "limit", "batch_size", "options", "arch", "trust_checkpoint",
          "calibration_data"]
YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
              st.sampled_from(["builtin:digits-cnn", "builtin:digits", "clean", "attacks", "ood", "corruptions"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(sorted(OPTIONS)), st.text(max_size=5)), inner,
                                            max_size=4)),
    max_leaves=10)
DOCUMENTS = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)), YAML_VALUES, max_size=8)
    .map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode()),
    st.text().map(str.encode),
    st.binary(),
    st.lists(st.sampled_from(list(string.printable) + [": ", "- ", "\n", "  ", "[", "{", "'", '"', "&a", "*a",
                                                        "!!int ", "!!float ", "!!binary ", "!!timestamp ", "!!set ",
                                                        "!!python/object:os.system ", "batch_size: ", "options: "]))
    .map(lambda parts: "".join(parts).encode()),
)


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "eval.yaml"


@FUZZ
@given(DOCUMENTS)
@example(b"? '\n\n  '\n: null\n")
@example(b"model: m\ndata: d\nbatch_size: 0\n")
@example(b"\xff\xfe")
@example(b"seed: !!int _\n")
def test_config_files_give_a_spec_or_one_line(config_path, document):
    config_path.write_bytes(document)
    spec = assert_refused_in_one_line(lambda: EvalSpec.from_yaml(config_path))
    if spec is not None:
        assert isinstance(spec, EvalSpec) and spec.batch_size >= 1 and isinstance(spec.trust_checkpoint, bool)
