"""The one registration mechanism: lazy entries, plugins through entry points, registration in-process, and the
suite options a registered suite brings to the CLI."""
from __future__ import annotations

from importlib.metadata import EntryPoint, EntryPoints

import pytest
import toy_suite
from foundation_helpers import assert_one_line_error, run_rbl

from robustbench_local import registry
from robustbench_local.errors import SpecError
from robustbench_local.registry import REGISTRIES, SUITES, Entry, Registry


def plugin_registry(monkeypatch, *points: EntryPoint) -> Registry:
    """A suites registry whose installed packages declare `points` (entry points as importlib.metadata reads them)."""
    monkeypatch.setattr(registry, "installed_entry_points", lambda: EntryPoints(points))
    return Registry("suites", "robustbench_local.suite_entries:SUITES")


def test_builtin_entries_declare_their_kind_s_meta_and_import_nothing_when_listed():
    for reg in REGISTRIES:
        assert reg.names(), reg.kind
        for entry in reg.entries():
            assert set(reg.meta_keys) <= set(entry.meta), (reg.kind, entry.name)
            assert entry.description and ":" in entry.target


def test_a_plugin_entry_point_adds_an_entry_and_never_replaces_a_builtin(monkeypatch):
    group = "robustbench_local.suites"
    reg = plugin_registry(monkeypatch, EntryPoint("toy", "toy_suite:ENTRY", group),
                          EntryPoint("clean", "toy_suite:ENTRY", "robustbench_local.attacks"))
    assert reg.names() == ["clean", "attacks", "corruptions", "ood", "toy"]
    assert reg.load("toy") is toy_suite.SUITE
    assert reg.get("clean").target == "robustbench_local.clean:SUITE"


@pytest.mark.parametrize("value, said", [
    ("toy_suite:SUITE", "names a ToySuite; it must name a robustbench_local.registry.Entry"),
    ("no_such_plugin_module:ENTRY", "cannot be loaded (ModuleNotFoundError: No module named 'no_such_plugin_module')"),
])
def test_a_broken_plugin_is_refused_in_one_line(monkeypatch, value, said):
    reg = plugin_registry(monkeypatch, EntryPoint("bad", value, "robustbench_local.suites"))
    with pytest.raises(SpecError, match="entry point bad = ") as info:
        reg.names()
    assert said in str(info.value) and "\n" not in str(info.value)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(SpecError, match=r"unknown suite 'nope'; known: clean, attacks, corruptions, ood \(see `rbl list "
                                        r"suites`\)"):
        SUITES.get("nope")
    with pytest.raises(SpecError, match=r"unknown corruption backend 'x'; .*\(see `rbl list corruptions`\)"):
        registry.CORRUPTION_BACKENDS.get("x")
    with pytest.raises(SpecError, match="must read 'package.module:attribute'"):
        Entry("x", "no_colon")
    with pytest.raises(SpecError, match="register: detectors entry 'x' declares no fit_on in its meta; a detectors "
                                        "entry declares consumes, fit_on"):
        registry.DETECTORS.register(Entry("x", "m:C", "d", meta={"consumes": ("logits",)}))


def test_a_registered_suite_gets_cli_options_and_runs(monkeypatch, tmp_path):
    assert "--scales" not in run_rbl("evaluate", "--help").stdout
    monkeypatch.setitem(SUITES.added, "toy", toy_suite.ENTRY)
    assert "[toy] comma-separated noise scales" in run_rbl("evaluate", "--help").stdout
    done = run_rbl("evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--suite", "toy", "--scales", "1",
                   "--limit", "20", "--calibration-data", "none", "--out", str(tmp_path))
    assert done.exit_code == 0, done.stderr
    assert "noise:1.0" in (tmp_path / "metrics.csv").read_text()


def test_a_broken_plugin_stops_the_cli_in_one_line(monkeypatch):
    monkeypatch.setitem(SUITES.__dict__, "_entries", None)
    bad = EntryPoint("bad", "no_such_plugin_module:X", "robustbench_local.suites")
    monkeypatch.setattr(registry, "installed_entry_points", lambda: EntryPoints([bad]))
    assert_one_line_error(run_rbl("list", "suites"), "entry point bad = no_such_plugin_module:X", "fix or uninstall")
    assert_one_line_error(run_rbl("evaluate", "--help"), "entry point bad")


DEVICE_CALLS: list[str] = []


def spy_on_device(images, corruption, severity, seeds, params):
    """A backend's declared on-device twin: the fast backend's, counting its calls."""
    from robustbench_local.corruptions.fast import corrupt_tensor

    DEVICE_CALLS.append(corruption)
    return corrupt_tensor(images, corruption, severity, seeds, params)


def test_the_corruptions_suite_dispatches_on_a_backend_s_declared_capability(monkeypatch, tmp_path):
    import robustbench_local as rbl

    spy = Entry("spy", "robustbench_local.corruptions.fast:corrupt_batch", "the fast backend under another name",
                meta={"processes": False, "on_device": "test_registry:spy_on_device"})
    monkeypatch.setitem(registry.CORRUPTION_BACKENDS.added, "spy", spy)
    DEVICE_CALLS.clear()
    run = rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["corruptions"], out=tmp_path / "spy", limit=16,
                       calibration_data=None, corruptions="contrast", severities="2", backend="spy")
    assert DEVICE_CALLS == ["contrast"]  # corrupted on the model's device because it declares it can be
    fast = rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["corruptions"], out=tmp_path / "fast", limit=16,
                        calibration_data=None, corruptions="contrast", severities="2", backend="fast")
    assert run.metric("acc", "corruptions", "contrast/2") == fast.metric("acc", "corruptions", "contrast/2")
