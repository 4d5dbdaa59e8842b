"""`convcalc diff`: matching by path, renames, depth subtotals, growth limits, --rev, formats."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import EXAMPLES, report_of
from convcalc.budget import parse_growth
from convcalc.diff import ADDED, CHANGED, REMOVED, RENAMED, UNCHANGED, diff_reports
from convcalc.spec.parser import parse_text

OLD = """name: small
input: [3, 32, 32]
layers:
  - conv2d: {name: stem, out_channels: 8, kernel_size: 3, padding: 1}
  - relu: {name: act}
  - sequential:
      name: body
      layers:
        - conv2d: {name: a, out_channels: 8, kernel_size: 3, padding: 1}
        - conv2d: {name: b, out_channels: 8, kernel_size: 3, padding: 1}
  - adaptiveavgpool2d: {name: pool, output_size: 1}
  - flatten: {name: flat}
  - linear: {name: fc, out_features: 10}
"""
# body.b widens to 16 channels, a dropout is added, fc is renamed to head
NEW = (OLD.replace("{name: b, out_channels: 8", "{name: b, out_channels: 16")
          .replace("  - linear: {name: fc,", "  - dropout: {name: drop}\n  - linear: {name: head,"))

STEM = 8 * 3 * 3 * 3 + 8
B_OLD, B_NEW = 8 * 8 * 3 * 3 + 8, 16 * 8 * 3 * 3 + 16
FC_OLD, FC_NEW = 8 * 10 + 10, 16 * 10 + 10


def network(text):
    return parse_text(text, "spec.yaml")


def run_diff(old=OLD, new=NEW, depth=None):
    a, b = network(old), network(new)
    from convcalc.analysis import analyze

    return diff_reports(analyze(a), analyze(b), a, b, depth)


def by_path(diff):
    return {c.path: c for c in diff.changes}


def test_layers_are_matched_by_path_and_renames_are_guessed():
    diff = run_diff()
    changes = by_path(diff)
    assert changes["body.b"].status == CHANGED
    assert changes["body.b"].aspects == ("shape", "params", "macs")
    assert (changes["body.b"].old.params, changes["body.b"].new.params) == (B_OLD, B_NEW)
    assert changes["body.b"].new.macs == 32 * 32 * 16 * 8 * 3 * 3
    assert changes["drop"].status == ADDED
    # fc (8 -> 10) and head (16 -> 10) differ in shapes: no rename, one removed and one added
    assert changes["fc"].status == REMOVED and changes["head"].status == ADDED
    assert changes["stem"].status == UNCHANGED
    # wider body.b: pool and flat change shape too
    assert (changes["pool"].status, changes["pool"].aspects) == (CHANGED, ("shape",))
    # a removed layer stays where it was, after the last layer before it that both sides have
    assert [c.path for c in diff.changes] == ["stem", "act", "body.a", "body.b", "pool", "flat", "fc", "drop", "head"]
    params = diff.total("params")
    assert (params.old, params.new) == (STEM + B_OLD + B_OLD + FC_OLD, STEM + B_OLD + B_NEW + FC_NEW)
    assert params.change == (B_NEW - B_OLD) + (FC_NEW - FC_OLD)


def test_identical_layers_under_new_names_are_paired_as_renamed():
    renamed = OLD.replace("name: fc,", "name: head,").replace("name: body", "name: trunk")
    diff = run_diff(OLD, renamed)
    pairs = [(c.old.path, c.new.path) for c in diff.changes if c.status == RENAMED]
    assert pairs == [("body.a", "trunk.a"), ("body.b", "trunk.b"), ("fc", "head")]
    assert diff.count(ADDED) == diff.count(REMOVED) == 0
    assert all(t.change == 0 for t in diff.totals)


def test_a_rename_needs_the_same_arguments():
    # same shapes, different padding and kernel: not the same layer
    other = OLD.replace("{name: a, out_channels: 8, kernel_size: 3, padding: 1}",
                        "{name: c, out_channels: 8, kernel_size: 1, padding: 0}")
    diff = run_diff(OLD, other)
    statuses = {c.path: c.status for c in diff.changes}
    assert statuses["body.a"] == REMOVED and statuses["body.c"] == ADDED


def test_depth_rows_are_prefixes_with_subtotals():
    deep = OLD.replace("        - conv2d: {name: a,", "        - sequential:\n            name: inner\n            layers:\n"
                       "              - conv2d: {name: x, out_channels: 8, kernel_size: 1}\n        - conv2d: {name: a,")
    diff = run_diff(OLD, deep, depth=2)
    rows = [(c.path, c.status, c.subtotal) for c in diff.changes]
    assert rows == [("stem", UNCHANGED, False), ("act", UNCHANGED, False), ("body", CHANGED, True),
                    ("body.inner", ADDED, False), ("body.a", UNCHANGED, False), ("body.b", UNCHANGED, False),
                    ("pool", UNCHANGED, False), ("flat", UNCHANGED, False), ("fc", UNCHANGED, False)]
    body = by_path(diff)["body"]
    assert (body.old.params, body.new.params) == (2 * B_OLD, 2 * B_OLD + 8 * 8 + 8)
    assert body.new.type == "3 layers" and body.new.layers == 3
    assert diff.count(ADDED) == 1 and diff.count(CHANGED) == 0  # subtotals are not counted


def test_depth_items_name_the_block_they_call():
    a = network((EXAMPLES / "resnet18.yaml").read_text())
    b = network((EXAMPLES / "resnet18.yaml").read_text().replace("planes: 256, stride: 2}", "planes: 320, stride: 2}"))
    from convcalc.analysis import analyze

    diff = diff_reports(analyze(a), analyze(b), a, b, depth=2)
    shown = [(c.path, c.item.type, c.subtotal) for c in diff.changes if c.status != UNCHANGED]
    assert shown == [("layer3", "stage", True), ("layer3.0", "basic", False), ("layer3.1", "basic", False),
                     ("layer4", "stage", True), ("layer4.0", "basic", False)]


def test_inserting_into_a_numbered_list_is_pointed_out():
    old = "input: [3, 8, 8]\nlayers:\n  - conv2d: {out_channels: 4, kernel_size: 3}\n  - relu\n  - flatten\n"
    new = old.replace("  - relu\n", "  - batchnorm2d\n  - relu\n")
    diff = run_diff(old, new)
    assert [(c.path, c.status) for c in diff.changes] == [("0", UNCHANGED), ("1", CHANGED), ("2", CHANGED), ("3", ADDED)]
    assert diff.retyped == 2


@pytest.mark.parametrize("text, expected", [
    ("params=5%", [("params", "5", True)]),
    ("params=5%, macs=10.5%", [("params", "5", True), ("macs", "10.5", True)]),
    ("params=100K,activation_bytes=64MiB", [("params", "100000", False), ("activation_bytes", "67108864", False)]),
])
def test_growth_limits_parse(text, expected):
    assert [(g.name, str(g.limit), g.relative) for g in parse_growth(text)] == expected


@pytest.mark.parametrize("text, message", [
    ("params", "--max-growth takes NAME=LIMIT pairs like params=5%,macs=10% or params=100K (got 'params')"),
    ("parms=5%", "--max-growth: unknown total 'parms' (expected one of params, buffers, macs, flops,"
                 " activation_bytes, param_bytes); did you mean 'params'?"),
    ("params=-5%", "--max-growth: params must be a percentage like 5% or an amount like 100K (got '-5%')"),
    ("params=64MiB", "--max-growth: params must be a number like 25.6M or 64MiB (got '64MiB'; suffixes: K, M, G,"
                     " T = 1000s)"),
    ("params=1%,params=2%", "--max-growth: 'params' is given twice"),
])
def test_bad_growth_limits_say_what_is_expected(text, message):
    with pytest.raises(ValueError) as err:
        parse_growth(text)
    assert str(err.value) == message


@pytest.mark.parametrize("limit, old, new, ok", [
    ("params=5%", 100, 105, True),   # exactly 5 % holds, like check's inclusive limits
    ("params=5%", 100, 106, False),
    ("params=5%", 100, 50, True),    # shrinking always holds
    ("params=5%", 0, 1, False),      # any growth from nothing exceeds a percentage
    ("params=0%", 0, 0, True),
    ("params=10", 100, 110, True),
    ("params=10", 100, 111, False),
])
def test_growth_limit_arithmetic(limit, old, new, ok):
    (growth,) = parse_growth(limit)
    assert growth.allows(old, new) is ok


# --- through the CLI ---------------------------------------------------------------------------

@pytest.fixture
def specs(tmp_path):
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(OLD)
    new.write_text(NEW)
    return str(old), str(new)


def test_table_shows_changed_rows_and_totals(run, specs):
    old, new = specs
    result = run("diff", old, new)
    assert result.exit_code == 0, result.stderr
    total_old, total_new = STEM + 2 * B_OLD + FC_OLD, STEM + B_OLD + B_NEW + FC_NEW
    lines = result.stdout.splitlines()
    assert lines[0] == f"{old} -> {new} (small, batch 1, float32)"
    assert lines[1].split() == ["Change", "Layer", "Type", "Output", "Params", "+/-", "MACs", "+/-", "RF/Jump"]
    assert lines[2].split() == ["changed", "body.b", "conv2d", "8x32x32", "->", "16x32x32", f"{B_NEW:,}",
                                f"+{B_NEW - B_OLD:,}", f"{32 * 32 * 16 * 8 * 9:,}", f"+{32 * 32 * 8 * 8 * 9:,}", "7/1"]
    assert [line.split()[:2] for line in lines[3:8]] == [["changed", "pool"], ["changed", "flat"], ["removed", "fc"],
                                                         ["added", "drop"], ["added", "head"]]
    assert "unchanged" not in result.stdout
    params_line = next(line for line in lines if line.startswith("Params"))
    change = total_new - total_old
    assert params_line.split() == ["Params", f"{total_old:,}", f"{total_new:,}", f"+{change:,}",
                                   f"+{change / total_old * 100:.2f}%"]
    assert "3 changed, 2 added, 1 removed layers" in lines


def test_all_shows_unchanged_rows(run, specs):
    result = run("diff", *specs, "--all")
    assert sum(line.startswith("unchanged") for line in result.stdout.splitlines()) == 3


def test_json_contract(run, specs):
    result = run("diff", *specs, "--format", "json", "--max-growth", "params=50%")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["schema_version", "old", "new", "batch_size", "dtype", "depth", "counts", "renamed",
                          "retyped", "totals", "layers", "growth"]
    assert data["schema_version"] == 1
    assert data["counts"] == {"changed": 3, "added": 2, "removed": 1, "renamed": 0, "unchanged": 3}
    assert data["totals"]["params"]["change"] == (B_NEW - B_OLD) + (FC_NEW - FC_OLD)
    b = data["layers"][0]
    assert (b["status"], b["path"], b["changed"]) == ("changed", "body.b", ["shape", "params", "macs"])
    assert b["new"] == {"type": "conv2d", "output_shape": [16, 32, 32], "params": B_NEW, "buffers": 0,
                        "macs": 32 * 32 * 16 * 8 * 9, "receptive_field": {"size": [7, 7], "jump": [1, 1]}, "layers": 1}
    assert [(row["path"], row["old"] is None, row["new"] is None) for row in data["layers"][3:]] == [
        ("fc", False, True), ("drop", True, False), ("head", True, False)]
    assert data["growth"] == [{"name": "params", "limit": "50%", "relative": True,
                               "change": data["totals"]["params"]["change"],
                               "relative_change": data["totals"]["params"]["relative"], "ok": True}]
    assert run("diff", *specs, "--format", "json", "--max-growth", "params=50%").stdout == result.stdout


def test_markdown_is_a_summary_line_then_details(run, specs):
    old, new = specs
    text = run("diff", old, new, "--format", "markdown").stdout
    lines = text.splitlines()
    assert lines[0].startswith("**small**: params +")
    assert lines[0].endswith(f"; 3 changed, 2 added, 1 removed layers (`{old}` -> `{new}`)")
    assert lines[2] == "<details><summary>Totals and 6 changed rows (convcalc diff)</summary>"
    assert lines[-1] == "</details>"
    assert "| changed | `body.b` | conv2d | 8x32x32 -> 16x32x32 |" in text


def test_growth_past_the_limit_fails_with_status_1(run, specs):
    result = run("diff", *specs, "--max-growth", "params=5%,macs=10%")
    assert result.exit_code == 1
    params = (B_NEW - B_OLD) + (FC_NEW - FC_OLD)
    rel = params / (STEM + 2 * B_OLD + FC_OLD) * 100
    macs_rel = (32 * 32 * 8 * 8 * 9 + 80) / (32 * 32 * (8 * 3 * 9 + 2 * 8 * 8 * 9) + 80) * 100
    assert result.stderr == (f"error: --max-growth: params +{rel:.2f}% > +5%; macs +{macs_rel:.2f}% > +10%\n")
    assert f"max-growth params +{rel:.2f}% > +5%" in result.stdout


def test_absolute_growth_limit_holds(run, specs):
    result = run("diff", *specs, "--max-growth", "params=1K")
    assert result.exit_code == 0, result.stderr
    assert "max-growth params +" in result.stdout and "<= +1K" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["diff", "{old}"], "error: diff needs two specs, OLD and NEW, or one spec and --rev REV (got 1)"),
    (["diff", "{old}", "{new}", "--rev", "main"],
     "error: --rev compares one spec with its committed version; give one SPEC (got 2)"),
    (["diff", "-", "-"], "error: only one of OLD and NEW can be '-' (stdin)"),
    (["diff", "{old}", "{tmp}/missing.yaml"], "error: {tmp}/missing.yaml: no such file"),
])
def test_bad_input_is_status_2(run, specs, tmp_path, args, message):
    old, new = specs
    fill = {"old": old, "new": new, "tmp": str(tmp_path)}
    result = run(*[a.format(**fill) for a in args])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == message.format(**fill)


def test_bad_growth_option_is_status_2(run, specs):
    result = run("diff", *specs, "--max-growth", "parms=5%")
    assert result.exit_code == 2
    assert ("Invalid value for '--max-growth': unknown total 'parms' (expected one of params, buffers, macs, flops,"
            " activation_bytes, param_bytes); did you mean 'params'?") in result.stderr


# --- --rev --------------------------------------------------------------------------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=convcalc", "-c", "user.email=convcalc@example.com", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    git(tmp_path, "init", "-q")
    (tmp_path / "net.yaml").write_text(OLD)
    git(tmp_path, "add", "net.yaml")
    git(tmp_path, "commit", "-q", "-m", "first")
    git(tmp_path, "tag", "v1")
    (tmp_path / "net.yaml").write_text(NEW)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@needs_git
def test_rev_compares_with_the_committed_spec(run, repo):
    result = run("diff", "net.yaml", "--rev", "v1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["old"]["label"], data["new"]["label"]) == ("v1:net.yaml", "net.yaml")
    assert data["counts"]["added"] == 2


@needs_git
def test_rev_errors_are_clear(run, repo, tmp_path_factory):
    result = run("diff", "net.yaml", "--rev", "nosuchbranch")
    assert (result.exit_code, result.stderr) == (2, "error: unknown revision 'nosuchbranch' in the git repository of"
                                                    " net.yaml\n")
    (repo / "other.yaml").write_text(OLD)
    result = run("diff", "other.yaml", "--rev", "v1")
    assert (result.exit_code, result.stderr) == (2, "error: other.yaml does not exist at revision 'v1'\n")
    outside = tmp_path_factory.mktemp("plain") / "net.yaml"
    outside.write_text(OLD)
    result = run("diff", str(outside), "--rev", "v1")
    assert (result.exit_code, result.stderr) == (2, f"error: {outside} is not in a git repository (--rev reads the"
                                                    " old spec with git show)\n")


@needs_git
def test_a_bad_committed_spec_is_located_at_the_revision(run, repo):
    (repo / "net.yaml").write_text(OLD.replace("kernel_size: 3, padding: 1}", "kernel_size: 0}", 1))
    git(repo, "commit", "-q", "-am", "broken")
    (repo / "net.yaml").write_text(OLD)
    result = run("diff", "net.yaml", "--rev", "HEAD")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0].startswith("error: HEAD:net.yaml:4:")


def test_every_example_diffs_with_itself(run):
    for spec in sorted(EXAMPLES.glob("*.yaml")):
        result = run("diff", str(spec), str(spec), "--depth", "2", "--format", "json")
        assert result.exit_code == 0, (spec, result.stderr)
        data = json.loads(result.stdout)
        assert data["layers"] == [] and all(t["change"] == 0 for t in data["totals"].values())


def test_report_helper_agrees_with_diff_totals():
    old, new = report_of(OLD), report_of(NEW)
    diff = diff_reports(old, new)
    assert diff.total("macs").new == new.totals.macs and diff.total("activation_bytes").old == old.totals.activation_bytes
