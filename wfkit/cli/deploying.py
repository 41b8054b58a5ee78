"""``wfkit deployments`` and ``deploy``: the builds runs are pinned to."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wfkit.cli.common import Subcommands, add_command, world_of
from wfkit.runtime.tools import tables as views


def cmd_deployments(args: argparse.Namespace) -> int:
    """List deployments with their runs per status; ``--prune`` drops kept copies that
    no run in flight needs."""
    from wfkit.runtime.loading.deployments import kept_deployments, remove_kept
    from wfkit.runtime.loading.project import find_root
    from wfkit.runtime.tools import deployments

    world = world_of(args)
    root = find_root()
    local = deployments.local_deployments(root)
    rows = deployments.deployment_rows(world, local, count_ended=args.all)
    if args.prune:
        in_flight = {str(r["deployment"]) for r in rows if r["in_flight"]}
        for kept in kept_deployments(root):
            if kept.deployment_id not in in_flight and kept.deployment_id != local.current:
                remove_kept(kept)
                print(f"pruned kept deployment {kept.deployment_id} (no run in flight)")
        local = deployments.local_deployments(root)
        rows = deployments.deployment_rows(world, local, count_ended=args.all)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(views.format_table(rows, deployments.deployment_columns(count_ended=args.all)))
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    """Keep a copy of a build under ``.wfkit/deployments/<id>/`` (workers serve it while
    it has runs in flight, after the build itself is replaced)."""
    from wfkit.runtime.loading.deployments import keep_deployment
    from wfkit.runtime.loading.project import find_build_dir, find_root

    build_dir = Path(args.build).resolve() if args.build else find_build_dir()
    if build_dir is None or not (build_dir / "manifest.json").is_file():
        raise FileNotFoundError(
            f"no wfkit build at {build_dir or find_root() / '.wfkit' / 'build'}: run "
            "`python -m wfbuild build` first (or give --build PATH)"
        )
    kept = keep_deployment(build_dir, find_root())
    print(f"kept deployment {kept.deployment_id} at {kept.path}")
    return 0


def register(sub: Subcommands) -> None:
    """Add this module's subcommands to the ``wfkit`` parser."""
    p = add_command(
        sub, "deployments", help="deployments with their runs in flight (counts per status)"
    )
    p.add_argument("--all", action="store_true", help="also count ended runs (reads every run)")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete kept copies (.wfkit/deployments) that no run in flight needs, first",
    )
    p.set_defaults(func=cmd_deployments)

    p = add_command(
        sub, "deploy", help="keep a copy of the build under .wfkit/deployments/<id>/; prints the ID"
    )
    p.add_argument("--build", default=None, metavar="PATH", help="the build (default: as worker)")
    p.set_defaults(func=cmd_deploy)
