"""Run ``airflow`` commands in forks of one interpreter that has imported Airflow already.

Every ``airflow ...`` command spends its first seconds importing Airflow (about 5 s of CPU on Airflow 3, more
under load), and ``airflow dags test`` on Airflow 3 two more importing its in-process execution API. A system
test runs dozens of commands on one Airflow home; this server, started with the installation's own Python and
the home's environment (``AirflowEnv.run`` with ``fork_server``), imports all that once and runs each command in
a fresh fork of itself, as Airflow 2's LocalExecutor runs ``airflow tasks run`` (``os.fork`` then the CLI's
parser and ``args.func``): the same CLI code (``airflow.__main__.main``), on its own process, stdout and stderr;
nothing a command does is seen by the next one (the server itself never runs one).

Protocol: one JSON request per line on stdin, ``{"args": [...], "env": {...}, "stdout": path, "stderr": path,
"timeout": seconds}``; one reply per line on stdout, ``FORKSERVER {"pid": ..}`` then ``FORKSERVER {"exit": code,
"timed_out": bool}``. Lines on stdout without the prefix are the imports' own output and are ignored.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback

PREFIX = "FORKSERVER "


def reply(out: object, message: dict[str, object]) -> None:
    print(PREFIX + json.dumps(message), file=out, flush=True)  # type: ignore[call-overload]


def preload() -> None:
    """What every command imports, and what ``dags test`` and ``tasks test`` do."""
    import airflow
    import airflow.__main__
    from airflow.cli.commands import dag_command, task_command  # noqa: F401

    if airflow.__version__.startswith("3."):
        # dags test's and tasks test's in-process execution API (one per process, the supervisor's
        # in_process_api_server()): built here, and its Cadwyn app initialised (the versioned routers of every
        # route and schema, which Cadwyn otherwise generates on the first request: 8-10 s of every command's
        # first task under load), so each fork inherits it ready. Its transport (an event loop on a thread) is
        # made in the fork: threads do not survive a fork.
        from airflow.sdk.execution_time.supervisor import in_process_api_server

        app = in_process_api_server().app
        if not getattr(app, "_cadwyn_initialized", True):
            app._cadwyn_initialize()


def run_child(request: dict[str, object]) -> int:
    """In the fork: the command's own output files, environment and session; Airflow's CLI ``main``."""
    os.setsid()  # its own process group: a timeout kills the command with whatever it started
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        handle = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    os.environ.update(request["env"])  # type: ignore[arg-type]
    from airflow import settings

    # The imports may have opened the metadata DB: a fork must not share the server's connections.
    if getattr(settings, "engine", None) is not None:
        settings.engine.dispose(close=False)
    sys.argv = ["airflow", *request["args"]]  # type: ignore[misc]
    from airflow.__main__ import main

    try:
        result = main()
    except SystemExit as exc:
        result = exc.code
    except BaseException:
        traceback.print_exc()
        result = 1
    if result is None:
        return 0
    return result if isinstance(result, int) else 1


def serve() -> None:
    control = os.fdopen(os.dup(1), "w")  # the replies; fd 1 stays the imports' own (ignored) output
    preload()
    reply(control, {"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = run_child(request)
            except BaseException:
                traceback.print_exc()
            finally:
                import logging

                logging.shutdown()  # the handlers' buffers; os._exit runs no atexit hook
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        reply(control, {"pid": pid})
        deadline = time.monotonic() + float(request.get("timeout", 600))
        timed_out = False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline and not timed_out:
                timed_out = True
                os.killpg(pid, signal.SIGKILL)
            time.sleep(0.05)
        reply(control, {"exit": os.waitstatus_to_exitcode(status), "timed_out": timed_out})


if __name__ == "__main__":
    serve()
