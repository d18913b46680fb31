"""Owning child processes: own process group, bounded stop, always reaped, dies with us."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
import trio
import trio.testing

from pagecast.lowlevel.proc import LineTail, StopPolicy, alive, descendants, is_ffmpeg, open_child, spawn

FAST = StopPolicy(polite_timeout=0.3, term_timeout=0.3)
IGNORE_TERM = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_child_runs_in_its_own_process_group():
    async with open_child(["sleep", "30"], name="sleep", policy=FAST) as child:
        assert os.getpgid(child.pid) == child.pid != os.getpgid(0)


async def test_polite_stop_is_tried_first():
    async def polite(child):
        await child.stdin.send_all(b"bye\n")

    script = "import sys; sys.stdin.readline(); sys.exit(3)"
    async with open_child([sys.executable, "-c", script], name="polite", stdin=True, polite=polite, policy=FAST) as child:
        pass
    assert child.returncode == 3
    assert child.killed_by is None


async def test_stop_escalates_to_sigkill_when_sigterm_is_ignored():
    async with open_child(IGNORE_TERM, name="stubborn", stdout=True, policy=FAST) as child:
        assert (await child.stdout.receive_some(100)).startswith(b"ready")
    assert child.returncode == -signal.SIGKILL
    assert child.killed_by == "SIGKILL"
    assert "killed by SIGKILL" in repr(child)


async def test_cancelled_owner_leaves_no_process():
    with trio.move_on_after(0.2):
        async with open_child(["sleep", "30"], name="sleep", policy=FAST) as child:
            await trio.sleep_forever()
    assert child.returncode is not None
    assert _gone(child.pid)


async def test_grandchildren_are_killed_with_the_child():
    script = "sleep 30 & echo $!; wait"
    async with open_child(["sh", "-c", script], name="sh", stdout=True, policy=FAST) as child:
        grandchild = int((await child.stdout.receive_some(100)).strip())
        assert psutil.pid_exists(grandchild)
    assert _gone(grandchild)


async def test_a_cancelled_waiter_leaves_the_wait_to_the_others():
    """Any number of tasks may wait for a child: one cancelled while it waits on the child
    does not stop the next from seeing the exit, and a wait after the exit returns at once."""
    script = "import sys; sys.stdin.readline(); sys.exit(5)"
    async with open_child([sys.executable, "-c", script], name="waited", stdin=True, policy=FAST) as child:
        codes = []

        async def waiter(*, task_status=trio.TASK_STATUS_IGNORED):
            with trio.CancelScope() as scope:
                task_status.started(scope)
                codes.append(await child.wait())

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                first = await nursery.start(waiter)
                await nursery.start(waiter)
                await trio.testing.wait_all_tasks_blocked()
                first.cancel()
                await trio.testing.wait_all_tasks_blocked()
                await child.stdin.send_all(b"exit\n")
            assert codes == [5]
        with trio.fail_after(0.1):
            assert await child.wait() == 5


async def test_a_childs_descendants_are_found_by_kind_and_leave_the_living_when_they_exit():
    async with open_child(["sh", "-c", "sleep 30 & echo $!; wait"], name="sh", stdout=True, policy=FAST) as child:
        grandchild = int((await child.stdout.receive_some(100)).strip())
        found = descendants(child.pid)
        assert [p.pid for p in found] == [grandchild]
        assert child.pid in [p.pid for p in descendants()] and descendants(child.pid, kind=is_ffmpeg) == []
        os.kill(grandchild, signal.SIGKILL)
        with trio.fail_after(5):
            while alive(found):
                await trio.sleep(0.02)
        assert descendants(child.pid) == []


async def test_failed_spawn_leaks_no_file_descriptors():
    before = _fd_count()
    with pytest.raises(FileNotFoundError, match="not found"):
        spawn(lambda fds: ["/nonexistent/binary", f"/dev/fd/{fds[0]}"], name="missing", stdin=True, stdout=True, write_fds=2)
    assert _fd_count() == before


async def test_children_die_when_pagecast_is_sigkilled():
    """Even a SIGKILL of the owner (no cleanup at all) leaves no child running."""
    owner = textwrap.dedent(
        """
        import sys, trio
        sys.path.insert(0, %r)
        from pagecast.lowlevel.proc import spawn
        async def main():
            child = spawn(["sleep", "60"], name="sleep", stderr=False)
            print(child.pid, flush=True)
            await trio.sleep_forever()
        trio.run(main)
        """
    ) % os.path.join(os.path.dirname(__file__), "..", "src")
    proc = subprocess.Popen([sys.executable, "-c", owner], stdout=subprocess.PIPE, text=True)
    try:
        grandchild = int(proc.stdout.readline())
        assert psutil.pid_exists(grandchild)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                if psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            await trio.sleep(0.05)
        else:
            pytest.fail(f"child {grandchild} survived a SIGKILL of its owner")
    finally:
        proc.kill()
        proc.wait()


def test_a_child_whose_owner_died_before_its_death_signal_was_armed_exits_instead_of_running():
    """The window a SIGKILL of the owner can hit: after the fork, before setpriv armed the
    death signal. The child then finds it has another parent, and exits at once."""
    from pagecast.lowlevel.proc import _if_parent_alive

    not_its_parent = os.getpid() + 1_000_000
    started = time.monotonic()
    result = subprocess.run([*_if_parent_alive(not_its_parent), "sleep", "60"], timeout=10)
    assert result.returncode == 137 and time.monotonic() - started < 5
    assert subprocess.run([*_if_parent_alive(os.getpid()), "true"], timeout=10).returncode == 0


def test_line_tail_splits_progress_lines_and_keeps_the_last():
    tail = LineTail(keep=3)
    lines = tail.feed(b"frame=1\rframe=2\rframe=")
    assert lines == ["frame=1", "frame=2"]
    assert tail.feed(b"3\nerror: boom\n") == ["frame=3", "error: boom"]
    tail.feed(b"a\nb\n")
    assert tail.text() == "error: boom\na\nb"


def test_the_mmap_threshold_is_fixed_in_a_process_with_glibc():
    """The service fixes glibc's mmap threshold so days of frames do not fragment its heap."""
    import platform

    from pagecast.lowlevel.allocator import fix_mmap_threshold

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert fix_mmap_threshold() is True
