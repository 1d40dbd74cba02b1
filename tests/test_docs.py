"""Docs stay in step with the code: the README is true to the code, both ways.

As sqlite-utils checks its docs:

Every command, every option of every command and every config key is in the README; every
command, option and config key the README names exists. Options come from click
(``command.params``), config keys from :func:`config_keys`, the one place that knows how
``rfm_engine.config`` describes its keys.

How the README documents options (the tests read it this way): the sections of "## Commands"
hold tables whose first cell names options (`` `--bins N` ``). A section whose heading names
`` `rfm-engine CMD` `` documents CMD's options; a section whose text says "Taken by `a`, `b`"
documents options shared by those commands ("Taken by every command": all of them).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import rfm_engine.config
from rfm_engine.cli import cli

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
HELP = {"-h", "--help"}
# An option: --long-name or a one-letter -x (so that `-infinity` or `-60.00` are not options).
OPTION = r"(?<![\w-])(--[A-Za-z][\w-]*|-[A-Za-z](?![\w-]))"


# --- what the code has ---------------------------------------------------------------------

def _leaf_commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(_leaf_commands(command, f"{prefix}{name} "))
        else:
            found[f"{prefix}{name}"] = command
    return found


COMMANDS = _leaf_commands(cli)
ROOT_OPTIONS = {opt for p in cli.params if isinstance(p, click.Option) for opt in p.opts}


def _opts(command: click.Command) -> set[str]:
    return {opt for p in command.params if isinstance(p, click.Option)
            for opt in (*p.opts, *p.secondary_opts)}


def _field_names(cls: type) -> list[str]:
    if hasattr(cls, "model_fields"):  # pydantic
        return list(cls.model_fields)
    return [f.name for f in dataclasses.fields(cls)]


def config_keys() -> set[tuple[str, str]]:
    """Every key of the run config, as ``(section, key)``, from ``rfm_engine.config``.

    ``[[campaigns]]`` keys are ``("campaigns", key)``; free tables (``[columns]``) are
    ``(name, "")``.
    """
    from rfm_engine.campaigns.plan import Campaign

    keys: set[tuple[str, str]] = set()
    for dotted in rfm_engine.config.config_keys():
        section, _, key = dotted.partition(".")
        if section == "campaigns":
            keys |= {("campaigns", name) for name in _field_names(Campaign)}
        else:
            keys.add((section, key))
    return keys


CONFIG_KEYS = config_keys()
CONFIG_SECTIONS = {section for section, _ in CONFIG_KEYS}
# Keys of the free tables: (table, key) is valid when key is in the set (None: any name).
FREE_TABLES = {
    "columns": None,  # filled below: the canonical column names
    "scoring.edges": {"recency_days", "frequency", "monetary"},
    "kpis.inputs": None,
    "migration.triggers": None,
}


def _free_table_keys() -> dict[str, set[str] | None]:
    from rfm_engine.io.columns import CANONICAL_COLUMNS
    from rfm_engine.io.crm_inputs import INPUT_KINDS

    return {**FREE_TABLES, "columns": set(CANONICAL_COLUMNS), "kpis.inputs": set(INPUT_KINDS)}


# --- what a text says ----------------------------------------------------------------------

def toml_keys(text: str) -> set[tuple[str, str]]:
    """Keys a commented TOML example shows, commented-out ones (``# key = 1``) included.

    A ``[a.b]`` table counts as key ``b`` of ``[a]`` and its keys as keys of ``a.b``.
    """
    keys: set[tuple[str, str]] = set()
    section = ""
    for line in text.splitlines():
        line = line.strip()
        header = re.match(r"#?\s*\[\[?([\w.]+)\]\]?", line)
        if header:
            section = header.group(1)
            keys.add((section, ""))
            if "." in section:
                keys.add(tuple(section.split(".", 1)))
            continue
        key = re.match(r"#?\s*(\w+)\s*=", line)
        if key and section:
            keys.add((section, key.group(1)))
    return keys


def _sections(text: str) -> list[tuple[str, str]]:
    """``(heading, body)`` of every section of a markdown text."""
    parts = re.split(r"^(#{2,4} .*)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def _commands_chapter() -> str:
    start = README.index("\n## Commands\n")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def _table_options(body: str) -> set[str]:
    """Options named in the first cell of the table rows of a section."""
    found: set[str] = set()
    for line in body.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        first = re.split(r"(?<!\\)\|", line)[1]
        found |= set(re.findall(OPTION, first))
    return found


def documented_options() -> dict[str, set[str]]:
    """Options each command's tables document, per command."""
    documented: dict[str, set[str]] = {name: set() for name in COMMANDS}
    for heading, body in _sections(_commands_chapter()):
        named = re.search(r"`rfm-engine ([a-z][\w -]*?)`", heading)
        if named:
            takers = [named.group(1)]
        elif "Taken by every command" in body:
            takers = list(COMMANDS)
        else:
            taken = re.search(r"Taken by (.*?)[.:]\n", body, flags=re.S)
            takers = re.findall(r"`([a-z][\w -]*)`", taken.group(1)) if taken else []
        for name in takers:
            assert name in COMMANDS, f"README section {heading!r} names unknown command {name!r}"
            documented[name] |= _table_options(body)
    return documented


DOCUMENTED = documented_options()


def _code_spans(text: str) -> list[str]:
    """The inline code spans of the prose (outside code blocks)."""
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]


def _code_spans_and_lines(text: str) -> list[str]:
    """Inline code spans, and the lines of code blocks (backslash continuations joined)."""
    found = _code_spans(text)
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
        found += [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    return found


def command_usages(text: str) -> list[tuple[str, str, list[str]]]:
    """``(usage, command, options)`` of every ``rfm-engine ...`` the text shows as code."""
    usages = []
    for code in _code_spans_and_lines(text):
        code = re.sub(r"\s#\s.*$", "", code).strip()  # a shell comment
        if not code.startswith("rfm-engine"):
            continue
        words = re.sub(r"\\\|", " ", code).replace("[", " ").replace("]", " ")
        try:
            tokens = shlex.split(words, posix=False)[1:]
        except ValueError:  # an unbalanced quote in a placeholder
            tokens = words.split()[1:]
        path: list[str] = []
        group: click.Command = cli
        options = []
        while tokens and (tokens[0].startswith("-") and tokens[0] in ROOT_OPTIONS | HELP):
            options.append(tokens.pop(0))
        while tokens and isinstance(group, click.Group) and not tokens[0].startswith("-"):
            path.append(tokens.pop(0))
            group = group.commands.get(path[-1]) if isinstance(group, click.Group) else None
            if group is None:
                break
        options += [t.split("=")[0] for t in tokens if re.fullmatch(OPTION, t.split("=")[0])]
        usages.append((code, " ".join(path), options))
    return usages


# --- the code is in the README -------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_of_every_command_is_in_a_readme_table(name):
    missing = sorted(
        "/".join(p.opts) for p in COMMANDS[name].params
        if isinstance(p, click.Option) and not set(p.opts) & DOCUMENTED[name])
    assert not missing, (
        f"rfm-engine {name}: option(s) {', '.join(missing)} are in no README table. Add a row "
        f"to the table of the README section '`rfm-engine {name}`' (or of a shared "
        "'Taken by ...' section) under '## Commands'.")


def test_the_group_options_are_in_the_readme():
    shown = {opt for _, command, options in command_usages(README) for opt in options}
    missing = ["/".join(p.opts) for p in cli.params if not set(p.opts) & shown]
    assert not missing, f"README shows no 'rfm-engine {missing[0]} ...'"


def test_every_config_key_is_in_the_readme_config_example():
    example = README[README.index("### Config file"):].split("```toml")[1].split("```")[0]
    shown = toml_keys(example)
    missing = sorted(f"[{s}] {k}".strip() for s, k in CONFIG_KEYS - shown)
    assert not missing, (f"config key(s) {', '.join(missing)} are not in the README's config "
                         "example ('### Config file'); add them (commented out if optional).")


def test_the_config_docstring_lists_every_key():
    doc = rfm_engine.config.__doc__ or ""
    after = doc.split("::\n", 1)[1].splitlines()
    example = "\n".join(itertools.takewhile(lambda line: not line or line[0] == " ", after))
    shown = toml_keys(example)
    missing = sorted(f"[{s}] {k}".strip() for s, k in CONFIG_KEYS - shown)
    assert not missing, f"the docstring of rfm_engine/config.py misses {', '.join(missing)}"
    _assert_keys_exist(shown, "the docstring of rfm_engine/config.py")


# --- what the README names exists ----------------------------------------------------------

def test_every_command_the_readme_shows_exists():
    for usage, command, _ in command_usages(README):
        assert command in COMMANDS or command in ("", "models", "segments"), (
            f"README shows {usage!r}: no command {command!r}")


def test_every_option_the_readme_shows_with_a_command_exists():
    for usage, command, options in command_usages(README):
        allowed = ROOT_OPTIONS | HELP | (_opts(COMMANDS[command]) if command in COMMANDS
                                         else set())
        unknown = [opt for opt in options if opt not in allowed]
        assert not unknown, f"README shows {usage!r}: rfm-engine {command} has no {unknown}"


def test_every_option_in_a_readme_table_exists_on_its_commands():
    for name, options in DOCUMENTED.items():
        unknown = sorted(options - _opts(COMMANDS[name]) - HELP)
        assert not unknown, (f"README documents {', '.join(unknown)} for rfm-engine {name}, "
                             "which has no such option")


def test_every_option_the_readme_names_exists_somewhere():
    every = ROOT_OPTIONS | HELP | {opt for c in COMMANDS.values() for opt in _opts(c)}
    for code in _code_spans_and_lines(README):
        code = code.strip()
        if not code.startswith("-"):  # rfm-engine usages are checked above; other programs'
            continue                  # options (mlflow ui --backend-store-uri) are theirs
        for opt in re.findall(OPTION, code):
            assert opt in every, f"README names {code!r}: no command has {opt}"


def _assert_keys_exist(keys: set[tuple[str, str]], where: str) -> None:
    free = _free_table_keys()
    for section, key in sorted(keys):
        if section in free:
            allowed = free[section]
            assert not key or allowed is None or key in allowed, (
                f"{where} shows [{section}] {key}: not one of {sorted(allowed or ())}")
            continue
        if not key:
            assert section in CONFIG_SECTIONS, f"{where} shows [{section}]: no such section"
            continue
        assert (section, key) in CONFIG_KEYS, f"{where} shows [{section}] {key}: no such key"


def test_every_config_key_the_readme_names_exists():
    example = README[README.index("### Config file"):].split("```toml")[1].split("```")[0]
    _assert_keys_exist(toml_keys(example), "the README's config example")
    named = set()
    for code in _code_spans(README):
        match = re.fullmatch(r"\[\[?([a-z_.]+)\]\]?(?:\s+(\w+))?(?:\s*=.*)?", code.strip())
        if match:
            named.add((match.group(1), match.group(2) or ""))
    assert named, "expected config keys written as `[section] key` in the README"
    _assert_keys_exist(named, "the README")


def test_the_key_enumeration_sees_the_keys_the_issue_named():
    assert {("input", "table"), ("input", "delimiter"), ("input", "encoding"),
            ("input", "decimal"), ("output", "no_suppression"), ("clustering", "sample_size"),
            ("clustering", "random_state"), ("campaigns", "holdout_fraction")} <= CONFIG_KEYS


def test_the_usage_parser_reads_commands_and_options():
    text = ("`rfm-engine -q segments lint x.toml --bins 4` and\n```bash\n"
            "rfm-engine cluster tx.csv --k-range 2..8 \\\n"
            "  -o out/c.csv  # a comment --nope\n```\n")
    assert command_usages(text) == [
        ("rfm-engine -q segments lint x.toml --bins 4", "segments lint", ["-q", "--bins"]),
        ("rfm-engine cluster tx.csv --k-range 2..8    -o out/c.csv", "cluster",
         ["--k-range", "-o"]),
    ]


# --- help texts, the README's own examples ------------------------------------------------


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_help_with_an_example(name):
    help_text = COMMANDS[name].help or ""
    assert help_text.strip(), f"{name} has no help"
    assert "Example" in help_text, f"{name} --help has no example"
    assert f"rfm-engine {name}" in help_text


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_is_documented_in_readme(name):
    assert f"rfm-engine {name}" in README


def test_readme_starts_with_the_two_commands():
    first_block = README.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_readme_config_example_is_a_valid_config(tmp_path):
    from rfm_engine.campaigns.plan import load_campaigns
    from rfm_engine.config import load_config

    block = README[README.index("### Config file"):].split("```toml")[1].split("```")[0]
    path = tmp_path / "weekly.toml"
    path.write_text(block)
    config = load_config(path)
    assert config.output.format == "mailchimp"
    assert load_campaigns(config.campaigns, source=str(path))[0].name == "winback"


def _bash_blocks(section: str) -> list[str]:
    text = README[README.index(section):]
    text = text[:text.index("\n## ", 1)] if "\n## " in text[1:] else text
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def _run_as_written(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run README lines in bash, with this environment's rfm-engine first on the PATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_readme_cdnow_raw_file_and_clv_commands_work_as_written(tmp_path):
    (tmp_path / "tests" / "data").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "data" / "CDNOW_sample.txt", tmp_path / "tests" / "data")
    convert_and_fit = _bash_blocks("### Predictive CLV")[0]
    assert "--delimiter whitespace --no-header" in convert_and_fit
    assert "rfm-engine clv " in convert_and_fit
    result = _run_as_written(convert_and_fit, tmp_path)
    assert result.returncode == 0, result.stderr
    params = json.loads((tmp_path / "out" / "params.json").read_text())
    assert params["bgnbd"]["r"] == pytest.approx(0.243, abs=0.001)
    assert params["gamma_gamma"]["p"] == pytest.approx(6.25, abs=0.01)
    summary_block = next(b for b in _bash_blocks("### Two different")
                         if "rfm-engine clv-summary" in b)
    result = _run_as_written(summary_block, tmp_path)
    assert result.returncode == 0, result.stderr
    summary = (tmp_path / "out" / "cdnow_summary.csv").read_text().splitlines()
    assert summary[0] == "customer_id,frequency,recency,T,monetary_value"
    assert len(summary) == 1 + 2357



def _markdown_tables(text: str) -> list[list[list[str]]]:
    tables, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def test_readme_first_example_gives_the_tables_shown(tmp_path):
    import pandas as pd

    section = README[README.index("## RFM in one example"):README.index("## The data contract")]
    (tmp_path / "we.csv").write_text(section.split("```")[1].lstrip("\n"))
    usage = re.search(r"`(rfm-engine segment /tmp/we.csv -o out/we.csv)`", section).group(1)
    result = _run_as_written(usage.replace("/tmp/we.csv", "we.csv"), tmp_path)
    assert result.returncode == 0, result.stderr
    got = pd.read_csv(tmp_path / "out" / "we.csv", dtype=str)
    for table in _markdown_tables(section)[:2]:
        shown = pd.DataFrame(table[1:], columns=table[0])
        mine = got[shown.columns].copy()
        for column in shown.columns:
            if column not in ("customer_id", "segment", "rfm_cell"):
                mine[column] = mine[column].astype(float)
                shown[column] = shown[column].astype(float)
        pd.testing.assert_frame_equal(mine.reset_index(drop=True), shown, check_dtype=False)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_help_examples_use_options_that_exist(name):
    help_text = COMMANDS[name].help or ""
    example = help_text[help_text.index("Example"):]
    usages = command_usages(f"```bash\n{example}\n```\n")
    assert usages, f"{name} --help shows no rfm-engine command line"
    for usage, command, options in usages:
        assert command == name, f"{name} --help shows {usage!r}"
        unknown = [opt for opt in options if opt not in _opts(COMMANDS[name]) | HELP]
        assert not unknown, f"{name} --help shows {usage!r}: no option {unknown}"
