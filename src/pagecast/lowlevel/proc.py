"""Owning child processes (FFmpeg, Chromium) so that none can outlive its owner.

Modelled on trio's ``_subprocess.py``: one async context manager owns a child; it never
exits before the child (and every process the child started) is gone. Differences, and why:

* Each child gets its own session and process group, so a stop signal reaches the whole
  tree (Chromium's zygote and renderers) and a Ctrl-C in our terminal does not.
* Each child is started under ``setpriv --pdeathsig KILL`` from the thread that runs the
  Trio loop, so even a SIGKILL of pagecast (no chance to clean up) kills its children.
  The death signal fires when the *forking thread* exits, which is why we fork from the
  loop thread and not from a worker thread as ``trio.lowlevel.open_process`` does.
* Stopping is polite, then SIGTERM, then SIGKILL, each step bounded.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import psutil
import trio

log = logging.getLogger(__name__)

_SETPRIV = shutil.which("setpriv")


@dataclass(frozen=True)
class StopPolicy:
    """How a child is asked to stop: ``polite`` (e.g. FFmpeg's ``q``), then TERM, then KILL."""

    polite_timeout: float = 3.0
    term_timeout: float = 2.0


class Child:
    """A running child process with Trio streams for the pipes we asked for."""

    def __init__(self, name: str, popen: subprocess.Popen, stdin, stdout, stderr, extra_fds: dict[int, trio.lowlevel.FdStream]):
        self.name = name
        self._popen = popen
        self.pid = popen.pid
        self.stdin: trio.lowlevel.FdStream | None = stdin
        self.stdout: trio.lowlevel.FdStream | None = stdout
        self.stderr: trio.lowlevel.FdStream | None = stderr
        self.extra_fds = extra_fds
        self.killed_by: str | None = None
        self._wait_lock = trio.Lock()
        self._descendants: dict[int, psutil.Process] = {}
        try:
            self._pidfd: int | None = os.pidfd_open(self.pid)
        except OSError:
            self._pidfd = None

    def __repr__(self) -> str:
        rc = self.returncode
        if rc is None:
            state = "running"
        elif rc < 0:
            try:
                state = f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                state = f"killed by signal {-rc}"
        else:
            state = f"exited with status {rc}"
        return f"<Child {self.name} pid={self.pid} {state}>"

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def poll(self) -> int | None:
        return self._popen.poll()

    async def wait(self) -> int:
        """Wait for the child to exit and reap it. Any number of tasks may wait at once: as in
        trio's ``Process.wait``, a lock lets one at a time wait on the pidfd (Trio allows only
        one waiter per fd), so a cancelled waiter hands the wait to the next one."""
        async with self._wait_lock:
            while self.poll() is None:
                if self._pidfd is not None:
                    await trio.lowlevel.wait_readable(self._pidfd)
                else:
                    await trio.sleep(0.05)
        return self._popen.returncode

    def signal_group(self, sig: int) -> None:
        """Signal the child's whole process group, and any descendant that left it."""
        self._remember_descendants()
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for pid, p in list(self._descendants.items()):
            try:
                p.send_signal(sig)  # not os.kill: psutil will not signal a reused pid
            except psutil.Error:
                del self._descendants[pid]

    def _remember_descendants(self) -> None:
        if self.returncode is None:
            self._descendants.update((p.pid, p) for p in descendants(self.pid))

    def tree_memory(self) -> int | None:
        """Bytes the child and its descendants hold (None: it has exited); blocking, it reads /proc."""
        return None if self.returncode is not None else tree_memory(self.pid)

    def descendants_alive(self) -> list[int]:
        return [p.pid for p in alive(self._descendants.values())]

    async def stop(self, polite: Callable[[], Awaitable[None]] | None = None, policy: StopPolicy = StopPolicy()) -> int:
        """Stop politely, then firmly, each step bounded; always reaps. Safe to call twice."""
        self._remember_descendants()
        if self.poll() is None and polite is not None:
            with trio.move_on_after(policy.polite_timeout):
                try:
                    await polite()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    log.debug("%s: polite stop failed: %s", self.name, exc)
                await self.wait()
        if self.poll() is None:
            log.info("%s did not stop politely; sending SIGTERM", self.name)
            self.killed_by = "SIGTERM"
            self.signal_group(signal.SIGTERM)
            with trio.move_on_after(policy.term_timeout):
                await self.wait()
        if self.poll() is None:
            log.warning("%s ignored SIGTERM for %.1f s; sending SIGKILL", self.name, policy.term_timeout)
            self.killed_by = "SIGKILL"
            self.signal_group(signal.SIGKILL)
            await self.wait()
        await self._reap_descendants()
        return self._popen.returncode

    async def _reap_descendants(self) -> None:
        """Kill whatever the child left behind (Chromium helpers) and wait until it is gone."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        with trio.move_on_after(2.0):
            while left := self.descendants_alive():
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                await trio.sleep(0.02)
        if left := self.descendants_alive():
            log.error("%s: descendants still alive after SIGKILL: %s", self.name, left)

    def _close_fds(self) -> None:
        for stream in (self.stdin, self.stdout, self.stderr, *self.extra_fds.values()):
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # noqa: BLE001 - closing is best effort in cleanup
                    pass
        if self._pidfd is not None:
            trio.lowlevel.notify_closing(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None


def descendants(pid: int | None = None, kind: Callable[[psutil.Process], bool] | None = None) -> list[psutil.Process]:
    """The running processes under ``pid`` (default: this process), zombies left out; with
    ``kind`` (:func:`is_chromium`, :func:`is_browser`, :func:`is_renderer`, :func:`is_ffmpeg`)
    only those of that kind. Blocking: reads /proc."""
    try:
        found = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    return [p for p in alive(found) if kind is None or kind(p)]


def alive(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Those of ``procs`` still running: neither gone, nor a zombie, nor their pid reused."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


def command(p: psutil.Process) -> list[str]:
    """A process's command line; empty if it has exited meanwhile."""
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def is_chromium(p: psutil.Process) -> bool:
    """Any of Chromium's processes (browser, zygote, renderer, GPU…)."""
    try:
        return "chrom" in p.name()
    except psutil.Error:
        return False


def is_browser(p: psutil.Process) -> bool:
    """Chromium's main process: one whose parent is not Chromium (a helper it has just forked
    still shows the browser's command line, so the command line cannot tell them apart)."""
    try:
        return is_chromium(p) and not is_chromium(p.parent())
    except (psutil.Error, AttributeError):  # parent() is None: it was orphaned
        return False


def is_renderer(p: psutil.Process) -> bool:
    """A Chromium renderer: the process that runs a page."""
    return "--type=renderer" in command(p)


def is_ffmpeg(p: psutil.Process) -> bool:
    cmd = command(p)
    return bool(cmd) and os.path.basename(cmd[0]).startswith("ffmpeg")


def tree_memory(pid: int) -> int | None:
    """Bytes a process and its descendants hold: the sum of their proportional set sizes
    (a shared page counts as a share per user, so the sum is what the tree costs, where
    summed resident sizes would count Chromium's shared memory once per process), or their
    resident sizes where PSS cannot be read. None: no such process. Blocking: reads /proc."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for p in processes:
        try:
            total += process_memory(p)
        except psutil.Error:
            pass  # exited meanwhile
    return total


def process_memory(p: psutil.Process) -> int:
    """One process's share of memory for :func:`tree_memory`: PSS, or RSS where PSS cannot
    be read. Raises psutil.Error if it is gone. Blocking: reads /proc."""
    try:
        return p.memory_full_info().pss
    except (psutil.AccessDenied, AttributeError):
        return p.memory_info().rss


def spawn(
    argv: Sequence[str] | Callable[[list[int]], Sequence[str]],
    *,
    name: str,
    stdin: bool = False,
    stdout: bool = False,
    stderr: bool = True,
    write_fds: int = 0,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> Child:
    """Start a child in its own session, dying with us; pipes become Trio streams.

    ``write_fds`` extra pipes are made whose read ends the child inherits; their numbers in
    the child are ``child.extra_fds`` keys. ``argv`` may be a function of those numbers
    (FFmpeg reads frames from ``/dev/fd/N``).
    Synchronous on purpose: the fork must happen on the Trio loop thread (see module doc).
    """
    to_close_in_parent: list[int] = []
    parent_ends: list[int] = []
    pass_fds: list[int] = []
    extra_parent: dict[int, int] = {}
    try:
        child_stdin = child_stdout = child_stderr = subprocess.DEVNULL
        p_stdin = p_stdout = p_stderr = None
        if stdin:
            r, w = os.pipe()
            child_stdin, p_stdin = r, w
            to_close_in_parent.append(r)
            parent_ends.append(w)
        if stdout:
            r, w = os.pipe()
            child_stdout, p_stdout = w, r
            to_close_in_parent.append(w)
            parent_ends.append(r)
        if stderr:
            r, w = os.pipe()
            child_stderr, p_stderr = w, r
            to_close_in_parent.append(w)
            parent_ends.append(r)
        for _ in range(write_fds):
            r, w = os.pipe()
            pass_fds.append(r)
            to_close_in_parent.append(r)
            parent_ends.append(w)
            extra_parent[r] = w

        full_argv = list(argv(pass_fds) if callable(argv) else argv)
        if not shutil.which(full_argv[0]):
            raise FileNotFoundError(f"{name}: cannot run {full_argv[0]!r}: not found or not executable")
        if _SETPRIV:
            full_argv = [_SETPRIV, "--pdeathsig", "KILL", "--", *_if_parent_alive(os.getpid()), *full_argv]
        popen = subprocess.Popen(
            full_argv,
            stdin=child_stdin,
            stdout=child_stdout,
            stderr=child_stderr,
            pass_fds=pass_fds,
            start_new_session=True,
            env=env,
            cwd=cwd,
            close_fds=True,
        )
    except BaseException:
        for fd in to_close_in_parent + parent_ends:
            try:
                os.close(fd)
            except OSError:
                pass
        raise
    for fd in to_close_in_parent:
        os.close(fd)
    child = Child(
        name,
        popen,
        trio.lowlevel.FdStream(p_stdin) if p_stdin is not None else None,
        trio.lowlevel.FdStream(p_stdout) if p_stdout is not None else None,
        trio.lowlevel.FdStream(p_stderr) if p_stderr is not None else None,
        {child_fd: trio.lowlevel.FdStream(w) for child_fd, w in extra_parent.items()},
    )
    log.debug("started %r: %s", child, " ".join(full_argv))
    return child


def _if_parent_alive(parent: int) -> list[str]:
    """The death signal is armed only once setpriv has run: a parent that died before that
    (a SIGKILL right after the fork) would leave the child running. So, armed, the child
    checks that its parent is still ``parent`` before it becomes the real program."""
    return ["/bin/sh", "-c", f'[ "$PPID" = {parent} ] || exit 137; exec "$@"', "sh"]


@asynccontextmanager
async def open_child(
    argv: Sequence[str] | Callable[[list[int]], Sequence[str]],
    *,
    name: str,
    polite: Callable[[Child], Awaitable[None]] | None = None,
    policy: StopPolicy = StopPolicy(),
    **spawn_kwargs,
) -> AsyncIterator[Child]:
    """Own a child for the duration of the block: on exit (normal, error or cancel) stop it."""
    child = spawn(argv, name=name, **spawn_kwargs)
    try:
        yield child
    finally:
        with trio.CancelScope(shield=True):
            try:
                await child.stop(
                    (lambda: polite(child)) if polite is not None else None,
                    policy,
                )
            finally:
                child._close_fds()
        log.debug("stopped %r", child)


class LineTail:
    """Splits a child's output into lines (on ``\\n`` or ``\\r``) and keeps the last few."""

    def __init__(self, keep: int = 20):
        self.lines: deque[str] = deque(maxlen=keep)
        self._partial = b""

    def feed(self, data: bytes) -> list[str]:
        data = self._partial + data
        parts = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._partial = parts.pop()
        if len(self._partial) > 65536:
            parts.append(self._partial)
            self._partial = b""
        out = []
        for raw in parts:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.lines.append(line)
                out.append(line)
        return out

    def text(self) -> str:
        return "\n".join(self.lines)


async def pump_lines(stream: trio.abc.ReceiveStream, tail: LineTail, on_line: Callable[[str], None]) -> None:
    """Read a child's output until EOF, handing each line to ``on_line``."""
    while True:
        try:
            data = await stream.receive_some(65536)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return
        if not data:
            for line in tail.feed(b"\n"):
                on_line(line)
            return
        for line in tail.feed(data):
            on_line(line)
