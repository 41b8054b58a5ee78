"""The hook's configuration: defaults, and every error reported at once with its TOML path."""

from __future__ import annotations

import pytest

from wfkit.hatch_plugin.config import HookConfig, HookConfigError, parse_config


def test_defaults() -> None:
    assert parse_config({}) == HookConfig(paths=(".",), out="__wfkit_build__", include_client=True)


def test_values() -> None:
    config = parse_config(
        {
            "paths": ["src/app", "jobs.py"],
            "out": "app/_wf/",
            "include-client": False,
            "dependencies": ["x"],
        },
    )
    assert config == HookConfig(paths=("src/app", "jobs.py"), out="app/_wf", include_client=False)


def test_every_error_at_once_prefixed() -> None:
    with pytest.raises(HookConfigError) as info:
        parse_config(
            {
                "paths": ["ok", 3, "/abs", "../up"],
                "out": 5,
                "include-client": "yes",
                "colour": "red",
            },
        )
    assert info.value.errors == [
        "tool.hatch.build.hooks.wfkit.colour: unknown key (expected one of: paths, out, include-client)",
        "tool.hatch.build.hooks.wfkit.paths[1]: expected a string, got 3",
        "tool.hatch.build.hooks.wfkit.paths[2]: must be relative to the project root ('/abs')",
        "tool.hatch.build.hooks.wfkit.paths[3]: must not contain '..' ('../up')",
        "tool.hatch.build.hooks.wfkit.out: expected a string, got 5",
        "tool.hatch.build.hooks.wfkit.include-client: expected a boolean, got 'yes'",
    ]
    assert all(
        line.strip().startswith("tool.hatch.build.hooks.wfkit.")
        for line in str(info.value).splitlines()[1:]
    )


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (
            {"paths": []},
            "tool.hatch.build.hooks.wfkit.paths: expected a non-empty array of strings, got []",
        ),
        (
            {"paths": "app"},
            "tool.hatch.build.hooks.wfkit.paths: expected a non-empty array of strings, got 'app'",
        ),
        ({"out": ""}, "tool.hatch.build.hooks.wfkit.out: must not be empty ('')"),
        ({"out": "a\\b"}, "tool.hatch.build.hooks.wfkit.out: must use / separators ('a\\\\b')"),
    ],
)
def test_single_errors(raw: dict[str, object], error: str) -> None:
    with pytest.raises(HookConfigError) as info:
        parse_config(raw)
    assert info.value.errors == [error]


def test_hatch_registration() -> None:
    from wfkit.hatch_plugin.hooks import hatch_register_build_hook
    from wfkit.hatch_plugin.plugin import WfkitBuildHook

    assert hatch_register_build_hook() is WfkitBuildHook
    assert WfkitBuildHook.PLUGIN_NAME == "wfkit"
