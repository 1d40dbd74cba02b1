"""Docs stay in step with the code: every command has an example and is in the README."""

from pathlib import Path

import click
import pytest

from rfm_engine.cli import cli

README = (Path(__file__).parents[1] / "README.md").read_text()


def _commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from _commands(command, full + " ")
        else:
            yield full, command


COMMANDS = dict(_commands(cli))


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


def test_the_engine_never_imports_mlflow_unless_tracking():
    import subprocess
    import sys

    code = ("import sys, rfm_engine.cli, rfm_engine.weekly, rfm_engine.pipeline, "
            "rfm_engine.tracking; print('mlflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_readme_config_example_is_a_valid_config(tmp_path):
    from rfm_engine.campaigns import load_campaigns
    from rfm_engine.config import load_config

    block = README[README.index("### Config file"):].split("```toml")[1].split("```")[0]
    path = tmp_path / "weekly.toml"
    path.write_text(block)
    config = load_config(path)
    assert config.output.format == "mailchimp"
    assert load_campaigns(config.campaigns, source=str(path))[0].name == "winback"
