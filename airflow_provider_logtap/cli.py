"""The ``logtap`` command (``[project.scripts]``): ``logtap init-dags <dags folder>`` writes logtap's DAG files
and a starter taps file into an Airflow DAGs folder, so a ``pip install`` has DAGs to run.

``logtap reconcile <taps file>`` checks that the taps' targets hold exactly the offsets their groups committed
(and with ``--repair`` replays what is missing), through the Airflow connections the taps name.

One subcommand per task (``add_parser`` in :func:`build_parser`), so later ones join without changing the
others. Like the package itself, this imports no Airflow, except inside ``reconcile`` (connections come from
Airflow): ``init-dags`` and ``settings-reference`` answer in well under a second.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_logtap import __version__

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

TAPS_FILE_NAME = "logtap_taps.yaml"
# What `airflow connections add` needs for each kind of connection a tap names (the field of the tap or target).
CONNECTION_EXAMPLES = {
    "kafka_conn_id": '--conn-type kafka --conn-extra \'{"bootstrap.servers": "broker:9092"}\'',
    "aws_conn_id": (
        "--conn-type aws --conn-login <access key id> --conn-password <secret key>"
        '  # S3-compatible: --conn-extra \'{"endpoint_url": "http://..."}\''
    ),
    "webhdfs_conn_id": "--conn-type webhdfs --conn-host <namenode> --conn-port 9870 --conn-login <hdfs user>",
    "search_conn_id": "--conn-type opensearch --conn-host <node> --conn-port 9200  # or --conn-type elasticsearch",
}


def dag_files() -> dict[str, Traversable]:
    """logtap's DAG files and starter taps file, by name: those the wheel ships in ``airflow_provider_logtap/
    _dags`` (the repo's ``dags/``, force-included at build), else, in a source checkout or editable install,
    the repo's ``dags/`` itself."""
    shipped = files("airflow_provider_logtap").joinpath("_dags")
    folder: Traversable = shipped if shipped.is_dir() else Path(__file__).resolve().parents[1] / "dags"
    found = {
        f.name: f
        for f in folder.iterdir()
        if f.is_file() and f.name.endswith((".py", ".yaml")) and not f.name.startswith(("_", "."))
    }
    if TAPS_FILE_NAME not in found:
        raise FileNotFoundError(f"logtap's DAG files are missing from this installation (looked in {folder})")
    return dict(sorted(found.items()))


def init_dags(folder: Path, *, force: bool = False) -> int:
    """Write the DAG files and the starter taps file into ``folder``; existing files are left alone (and nothing
    is written) unless ``force``. Prints what was written and what to do next."""
    sources = dag_files()
    folder = folder.expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        print(f"logtap: {folder} is not a directory", file=sys.stderr)
        return 2
    contents = {name: source.read_bytes() for name, source in sources.items()}
    targets = {name: folder / name for name in contents}
    clashes = [
        name for name, path in targets.items() if path.exists() and path.read_bytes() != contents[name]
    ]
    if clashes and not force:
        print(
            f"logtap: not overwriting {', '.join(clashes)} in {folder} (they differ from this version's); "
            "nothing written. Run again with --force to overwrite them (your taps file too).",
            file=sys.stderr,
        )
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in targets.items():
        same = path.exists() and path.read_bytes() == contents[name]
        if not same:
            path.write_bytes(contents[name])
        print(f"{'unchanged' if same else 'overwrote' if name in clashes else 'wrote'} {path}")
    print(next_steps(folder))
    return 0


def next_steps(folder: Path) -> str:
    """What to do after ``init-dags``: the taps file, the connections its taps name, unpausing their DAGs.

    Read from the starter file as plain YAML (tap names, ``*_conn_id`` values): checking taps is the DAG files'
    job, and it needs Airflow (schedules), which this command does without.
    """
    import yaml

    taps_file = folder / TAPS_FILE_NAME
    config = yaml.safe_load(taps_file.read_text()) or {}
    connections: dict[str, str] = {}

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if str(key).endswith("_conn_id") and isinstance(value, str):
                    connections.setdefault(value, str(key))
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(config)
    dag_ids = [f"logtap_{tap['name']}" for tap in config.get("taps") or [] if isinstance(tap, dict)]
    lines = [
        "",
        "Next:",
        f"1. Declare your taps in {taps_file} (the DAG files read the taps file beside them), or set",
        "   LOGTAP_TAPS_FILE to another file's path for every Airflow component (scheduler, DAG processor,",
        f"   workers). Make sure {folder} is Airflow's DAGs folder ([core] dags_folder).",
        "2. Create the connections the taps name (or keep only the taps whose targets you have):",
        *(
            f"   airflow connections add {conn_id} {CONNECTION_EXAMPLES.get(kind, '')}".rstrip()
            for conn_id, kind in connections.items()
        ),
        "3. Check that the DAGs load (invalid taps are import errors of logtap_tap_errors.py), then unpause:",
        "   airflow dags list-import-errors",
        *(f"   airflow dags unpause {dag_id}" for dag_id in dag_ids),
        "   logtap_replay replays or rebuilds past ranges: trigger it from the UI when needed.",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logtap", description="logtap, the Airflow provider that loads web-server logs from Kafka."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, title="commands")
    init = commands.add_parser(
        "init-dags",
        help="write logtap's DAG files and a starter taps file into a DAGs folder",
        description=(
            "Write logtap's DAG files (one DAG per tap, the taps file's error report, the replay DAG) and a "
            f"starter {TAPS_FILE_NAME} into DAGS_FOLDER (created if missing)."
        ),
    )
    init.add_argument("dags_folder", type=Path, metavar="DAGS_FOLDER", help="the Airflow DAGs folder")
    init.add_argument("--force", action="store_true", help="overwrite files that differ (the taps file too)")
    init.set_defaults(run=lambda args: init_dags(args.dags_folder, force=args.force))
    reference = commands.add_parser(
        "settings-reference",
        help="print the settings reference (every tap and target setting; docs/settings.md)",
        description="Print the settings reference, generated from the settings models, as Markdown.",
    )
    reference.set_defaults(run=lambda args: settings_reference())
    check = commands.add_parser(
        "reconcile",
        help="check that the taps' targets hold exactly what their groups committed (and repair)",
        description=(
            "Reconcile taps against Kafka: per target and partition, the offsets of [log start, committed) "
            "missing (and missing below the log start), doubled, and held beyond the committed offset, as "
            "compact ranges. Connections come from Airflow (its metadata DB, environment variables or secrets "
            "backend). Exit status: 0, or 1 with --fail-on-gap when anything is missing or doubled (or a "
            "target could not be checked), 2 when the taps file or the selection is invalid."
        ),
    )
    check.add_argument("taps_file", type=Path, metavar="TAPS_FILE", help="the taps file (logtap_taps.yaml)")
    check.add_argument(
        "--tap", action="append", default=[], dest="taps", metavar="NAME", help="a tap to check (repeatable)"
    )
    check.add_argument("--topic", help="check every tap of this topic (default: every tap)")
    check.add_argument(
        "--fail-on-gap", action="store_true", help="exit 1 when anything is missing or doubled"
    )
    check.add_argument(
        "--repair",
        action="store_true",
        help="replay the missing ranges into the targets that lack them, then check",
    )
    check.add_argument(
        "--json", action="store_true", help="print the report as JSON (the lines go to stderr)"
    )
    check.set_defaults(run=reconcile)
    return parser


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout meanwhile (Airflow's loggers hold the stream, so file descriptor 1
    too) to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def reconcile(args: argparse.Namespace) -> int:
    """``logtap reconcile``: the check (and repair) of :func:`airflow_provider_logtap.holdings.reconcile`."""
    import json

    from airflow_provider_logtap import holdings
    from airflow_provider_logtap.errors import ConfigurationError
    from airflow_provider_logtap.taps import load_taps_leniently

    taps, errors = load_taps_leniently(args.taps_file)
    for error in errors:
        print(f"logtap: skipping an invalid tap: {error}", file=sys.stderr)
    try:
        chosen = holdings.select_taps(taps, topic=args.topic, names=args.taps)
    except ConfigurationError as exc:
        print(f"logtap: {exc}", file=sys.stderr)
        return 2
    stdout = sys.stdout
    out = sys.stderr if args.json else stdout
    # With --json, stdout holds the JSON only: what Airflow's loggers print goes to stderr meanwhile.
    with _stdout_to_stderr() if args.json else contextlib.nullcontext():
        result = holdings.reconcile(
            chosen,
            all_taps=taps,
            fix=args.repair,
            run="logtap-cli/reconcile",
            say=lambda line: print(line, file=out),
        )
    if args.json:
        print(json.dumps(result, indent=1), file=stdout)
    return 1 if args.fail_on_gap and result["gaps"] else 0


def settings_reference() -> int:
    """Print the settings reference (what ``docs/settings.md`` holds)."""
    from airflow_provider_logtap.reference import render

    sys.stdout.write(render())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
