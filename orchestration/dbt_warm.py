"""dbt started before its step: a process that has imported dbt waits for the build.

Before dbt does any work, Python spends about 1.7 s of one core importing dbt-core, its DuckDB
adapter and DuckDB (docs/performance.md, "Twenty-seventh round"). In a run that builds dbt after
intake, that import is done during intake by a *warm* process, on a thread of the lowest CPU
priority (nice 19: it takes only a core that intake leaves idle), and that process then runs
the dbt step's build.

- The dbt step runs ``publieksdata-dbt`` (the *launcher*) where it would run ``dbt``; dagster-dbt
  starts it and reads its output as it would dbt's. The launcher connects to the warm process
  (its socket is in PUBLIEKSDATA_DBT_WARM), hands over its arguments, environment, working
  directory and its standard input, output and error (the file descriptors themselves), and
  waits. The warm process runs ``dbt <arguments>`` exactly as the ``dbt`` command would, into
  the launcher's output, and sends back the exit status.
- The warm process listens from its first moment: a launcher that comes while dbt is still
  being imported waits for it (the import would have been its own first work anyway).
- The parse ahead: a data home's first build parses the whole project (about 2.4 s of one core
  at the start of the dbt step), and so does the first build after the project changed; a build
  whose target folder holds an up-to-date ``partial_parse.msgpack`` skips that. When the
  intake step sees no such file (``ParseAhead``), the warm process, once dbt is imported and
  no build is waiting yet, parses the project into its own private folder on the same nice-19
  thread, and puts the ``partial_parse.msgpack`` that made into the build's target folder just
  before it runs the build. dbt itself checks that file (project files, profile, variables,
  the environment variables the project reads) and parses again whatever it does not cover,
  so a wrong guess costs time, never a wrong build.
- Without a warm process (none started, already used, gone, or ended while a launcher waited)
  the launcher becomes the real ``dbt`` (exec: the same process), as before.
- One build per warm process: it takes one request and ends with it.
- A build ends with its launcher: when the launcher's connection closes (the launcher killed
  with its job, or stopped by the step), the warm process kills itself, as dbt itself would
  have been killed. The launcher exits only after the warm process has, so dbt has closed the
  warehouse file when the step goes on.
- Unused, it ends by itself when the process that started it is gone, or after
  PUBLIEKSDATA_DBT_WARM_IDLE seconds (default 3600).

Its socket lives in a private temporary directory (mode 0700): only this user can connect.
Nothing of the data passes through it, only dbt's command line and environment.

This module imports nothing heavy at its top: the launcher starts with it on every build.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ENV = "PUBLIEKSDATA_DBT_WARM"
IDLE_ENV = "PUBLIEKSDATA_DBT_WARM_IDLE"
LAUNCHER = "publieksdata-dbt"
_SOCKET = "dbt.sock"
_TAKEN = b"T"  # the warm process took the request: from now on it runs the build
_LENGTH = struct.Struct(">I")
SERVED, UNUSED = 0, 3  # the warm process's exit status
# the dbt step's log line when the warm process ran its build
RAN_WARM = "dbt ran in the process warmed during intake (orchestration/dbt_warm.py)"
_STATUS = struct.Struct(">i")
# what dbt imports before it runs a command: dbt-core's CLI and the adapter of this project
_IMPORTS = ("dbt.cli.main", "dbt.adapters.duckdb", "dbt.adapters.duckdb.impl")
_PARTIAL_PARSE = "partial_parse.msgpack"  # dbt's saved parse, in its target folder


# ---------------------------------------------------------------------------------------------
# the step's side: start and stop a warm process


@dataclass(frozen=True)
class ParseAhead:
    """Where the build will run: its dbt project, profiles folder and target folder."""

    project_dir: Path
    profiles_dir: Path
    target: Path

    def needed(self, newest_source: float) -> bool:
        """Whether the build would parse the project: no saved parse in its target folder, or
        one older than the newest project file (``newest_source``, a modification time)."""
        saved = self.target / _PARTIAL_PARSE
        try:
            return saved.stat().st_mtime < newest_source
        except FileNotFoundError:
            return True


@dataclass
class Warm:
    """A warm process started by ``start``; ``socket`` is where it will listen."""

    process: subprocess.Popen
    folder: Path

    @property
    def socket(self) -> Path:
        return self.folder / _SOCKET

    def served(self) -> bool:
        """True when the warm process ran a build and has exited (the launcher waits for that)."""
        return self.process.poll() == SERVED

    def stop(self) -> None:
        """End the warm process if it still runs and remove its folder. Called after the
        build's launcher exited, or before a new one is started: a warm process that took a
        build has ended by then (with the build, or killed with its launcher)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_current: Warm | None = None
_lock = threading.Lock()


def start(parse_ahead: ParseAhead | None = None) -> Warm:
    """Start a warm process for the next build of this process's runs (PUBLIEKSDATA_DBT_WARM
    points the launcher at it); an unused one started before is stopped first. With
    ``parse_ahead`` it also parses that project for that target folder while it waits."""
    global _current
    with _lock:
        if _current is not None:
            _current.stop()
        folder = Path(tempfile.mkdtemp(prefix="publieksdata-dbt-"))  # mode 0700
        command = [sys.executable, "-u", "-m", "orchestration.dbt_warm", "serve",
                   str(folder / _SOCKET)]  # fmt: skip
        if parse_ahead is not None:
            command.append(json.dumps({k: str(v) for k, v in vars(parse_ahead).items()}))
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, close_fds=True,
        )  # fmt: skip
        _current = Warm(process, folder)
        os.environ[ENV] = str(_current.socket)
        return _current


def stop() -> Warm | None:
    """Forget the warm process started by ``start`` (stopped if unused); return it."""
    global _current
    with _lock:
        warm, _current = _current, None
        if os.environ.get(ENV) == (str(warm.socket) if warm else None):
            os.environ.pop(ENV, None)
        if warm is not None:
            warm.stop()
        return warm


def launcher() -> str:
    """The launcher beside this Python (installed with the project), else plain ``dbt``."""
    path = Path(sys.executable).parent / LAUNCHER
    return str(path) if path.exists() else "dbt"


# ---------------------------------------------------------------------------------------------
# the launcher (``publieksdata-dbt``)


def launch() -> None:
    """Run ``dbt <arguments>`` in the warm process if there is one, else become ``dbt``."""
    args = sys.argv[1:]
    path = os.environ.get(ENV)
    if path:
        status = _through_warm(path, args)
        if status is not None:
            sys.stdout.flush()
            os._exit(status)
    dbt = Path(sys.executable).parent / "dbt"
    os.execv(str(dbt), [str(dbt), *args])


def _through_warm(path: str, args: list[str]) -> int | None:
    """The build's exit status from the warm process at ``path``; None if it did not take it."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        request = json.dumps({"args": args, "cwd": os.getcwd(), "env": dict(os.environ)})
        body = request.encode("utf-8")
        socket.send_fds(conn, [_LENGTH.pack(len(body))], [0, 1, 2])
        conn.sendall(body)
        if _receive(conn, 1) != _TAKEN:
            return None  # it ended before taking the build: nothing ran
    except OSError:
        conn.close()
        return None  # no warm process there (any more): nothing ran
    # from here the build runs there; this process's death ends it (the warm process watches
    # this connection), so the default actions of SIGTERM and SIGINT are what they should be
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    status = _receive(conn, _STATUS.size)
    while _receive(conn, 1):  # the connection closes when the warm process has exited
        pass
    if len(status) != _STATUS.size:
        print("dbt's warm process ended without an exit status", file=sys.stderr)
        return 1
    return _STATUS.unpack(status)[0]


def _receive(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


# ---------------------------------------------------------------------------------------------
# the warm process (``python -m orchestration.dbt_warm serve <socket>``)


def serve(path: str, parse_ahead: ParseAhead | None = None) -> int:
    parent = os.getppid()
    idle = float(os.environ.get(IDLE_ENV, "3600"))
    folder = Path(path).parent
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)  # at once: a launcher that comes now waits in the queue
    listener.listen(1)
    parsed: Path | None = None
    request = None
    try:
        if not _on_low_priority_thread(_import_dbt):
            return UNUSED  # dbt does not import: a waiting launcher runs dbt itself, and says why
        if parse_ahead is not None and not _waiting(listener):
            parsed = _on_low_priority_thread(_parse, parse_ahead, folder / "parse")
        listener.settimeout(1.0)
        deadline = time.monotonic() + idle
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                if os.getppid() != parent or time.monotonic() > deadline:
                    return UNUSED
                continue
            request = _take(conn)
            if request is not None:
                break
            conn.close()
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
        if request is None or parsed is None:
            _remove(folder)  # else after the parse is handed over
    args, cwd, env, fds = request
    conn.settimeout(None)
    conn.sendall(_TAKEN)
    threading.Thread(target=_die_with, args=(conn,), daemon=True, name="launcher").start()
    if parsed is not None and parse_ahead is not None:
        _hand_over(parsed, parse_ahead.target, cwd, env)
        _remove(folder)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for number, fd in enumerate(fds):
        os.dup2(fd, number)
        os.close(fd)
    status = _run_dbt(args)
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(_STATUS.pack(status))
    return SERVED  # the launcher's connection closes when this process has exited


def _end_served(code: int) -> None:
    """End the process that ran a build: what its exit needs, without Python's teardown.

    After dbt's build, Python's normal exit spends ~0.4 s of one core on tearing down the
    modules and objects of dbt (docs/performance.md, "Twenty-ninth round") while the launcher,
    and so the dbt step, waits. What an exit has to do is done here: the warehouse closed (DuckDB
    checkpoints it and lets go of the file), the exit handlers run (logging's among them: dbt's
    file log flushed), the output flushed; then the process ends at once.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager

        with DuckDBConnectionManager._LOCK:
            environment = DuckDBConnectionManager._ENV
            DuckDBConnectionManager._ENV = None
        if environment is not None:
            environment.close()
    except Exception as error:  # noqa: BLE001 - the build's status is already sent
        # as at a normal exit: what DuckDB did not checkpoint stays in its WAL, replayed when
        # the warehouse is next opened
        print(f"dbt's warm process: closing the warehouse failed ({type(error).__name__})",
              file=sys.stderr)  # fmt: skip
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _remove(folder: Path) -> None:
    """Remove this warm process's folder (its socket is gone by then) with the parse in it."""
    shutil.rmtree(folder / "parse", ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def _on_low_priority_thread(work, *args):
    """``work(*args)`` on a thread of the lowest CPU priority (nice 19, that thread only: the
    build later runs on the main thread at the process's own); its result."""
    result = []

    def run() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass  # not Linux: at the process's priority
        result.append(work(*args))

    thread = threading.Thread(target=run, name=getattr(work, "__name__", "work"))
    thread.start()
    thread.join()
    return result[0] if result else None


def _import_dbt() -> bool:
    import importlib

    for name in _IMPORTS:
        importlib.import_module(name)
    return True


def _waiting(listener: socket.socket) -> bool:
    """Whether a launcher is already waiting (then it gets the build now, without the parse
    ahead: its build parses what it needs, as without a warm process)."""
    readable, _, _ = select.select([listener], [], [], 0)
    return bool(readable)


def _parse(ahead: ParseAhead, folder: Path) -> Path | None:
    """``dbt parse`` of the build's project into ``folder``; the saved parse, or None when the
    parse failed (the build then meets and reports the same problem itself)."""
    from dbt.cli.main import dbtRunner

    target = folder / "target"
    try:
        done = dbtRunner().invoke([
            "parse", "--quiet", "--no-send-anonymous-usage-stats",
            "--project-dir", str(ahead.project_dir), "--profiles-dir", str(ahead.profiles_dir),
            "--target-path", str(target), "--log-path", str(target),
        ])  # fmt: skip
    except Exception:  # noqa: BLE001 (anything: the build parses for itself)
        return None
    result = target / _PARTIAL_PARSE
    return result if done.success and result.is_file() else None


def _hand_over(parsed: Path, target: Path, cwd: str, env: dict[str, str]) -> None:
    """Put the parse made ahead into the build's target folder (atomically: a reader sees the
    old file or the new one), when the build's target folder is the one it was made for."""
    build_target = Path(cwd, env.get("DBT_TARGET_PATH", "target"))
    try:
        if build_target.resolve() != target.resolve():
            return
        target.mkdir(parents=True, exist_ok=True)
        partial = target / f".{_PARTIAL_PARSE}.{os.getpid()}"
        shutil.copyfile(parsed, partial)
        os.replace(partial, target / _PARTIAL_PARSE)
    except OSError:
        return  # the build parses for itself


def _take(conn: socket.socket) -> tuple[list[str], str, dict[str, str], list[int]] | None:
    """A launcher's request (arguments, working directory, environment, its three file
    descriptors), or None if it is not one."""
    conn.settimeout(10.0)
    try:
        head, fds, _, _ = socket.recv_fds(conn, _LENGTH.size, 3)
        if len(fds) != 3 or len(head) != _LENGTH.size:
            for fd in fds:
                os.close(fd)
            return None
        body = _receive(conn, _LENGTH.unpack(head)[0])
        request = json.loads(body.decode("utf-8"))
        return list(request["args"]), request["cwd"], dict(request["env"]), fds
    except (OSError, ValueError, KeyError):
        return None


def _die_with(conn: socket.socket) -> None:
    """Kill this process when the launcher's connection closes before the build ended."""
    try:
        while conn.recv(1):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def _run_dbt(args: list[str]) -> int:
    """``dbt <args>`` as the ``dbt`` command runs it (dbt-core's entry point); its exit status."""
    from dbt.cli.main import cli

    sys.argv = ["dbt", *args]
    try:
        cli.main(args=args, prog_name="dbt")
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"] and len(sys.argv) in (3, 4):
        ahead = None
        if len(sys.argv) == 4:
            ahead = ParseAhead(**{k: Path(v) for k, v in json.loads(sys.argv[3]).items()})
        code = serve(sys.argv[2], ahead)
        if code == SERVED:
            _end_served(code)
        sys.exit(code)
    sys.exit("usage: python -m orchestration.dbt_warm serve <socket> [<parse ahead, JSON>]")
