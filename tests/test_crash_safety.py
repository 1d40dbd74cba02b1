"""Crash and concurrency safety of the weekly run, with real ``rfm-engine run`` processes.

A run killed with SIGKILL at several points leaves the output folder holding either no new
run or a complete one whose ``manifest.json`` matches its files (sha256 of every output), and
the next run completes and removes the leftovers. Two runs into the same folder and as-of
date: one publishes, the other is refused with exit 5.
"""

import fcntl
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rfm_engine.errors import OutputBusyError
from rfm_engine.io.writers import lock_path, publish_lock, remove_leftovers

RFM = [str(Path(sys.executable).with_name("rfm-engine"))]
AS_OF = "2025-12-31"  # the sample's last day
MAPPING = {
    "customer_id": "Customer ID", "order_id": "Invoice", "order_date": "InvoiceDate",
    "quantity": "Quantity", "unit_price": "Price", "email": "Email", "first_name": "First Name",
}


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """The sample data (300 customers) and a run config over it, with its suppression list."""
    folder = tmp_path_factory.mktemp("sample")
    made = subprocess.run([*RFM, "sample", str(folder), "--customers", "300"],
                          capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    path = folder / "weekly.toml"
    lines = ["[input]", f"path = {json.dumps(str(folder / 'transactions.csv'))}", "[columns]",
             *(f'{key} = "{value}"' for key, value in MAPPING.items()),
             "[output]", f"suppression = [{json.dumps(str(folder / 'suppression.csv'))}]"]
    path.write_text("\n".join(lines) + "\n")
    return path


def args(config, out, *extra):
    return [*RFM, "run", "--config", str(config), "--output-dir", str(out), "--no-tracking",
            *extra]


def run(config, out, *extra):
    return subprocess.run(args(config, out, *extra), capture_output=True, text=True,
                          timeout=300)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def published(out):
    """Check ``out`` holds no run for AS_OF or a complete one; return whether it has one."""
    run_dir = Path(out) / AS_OF
    if not run_dir.exists():
        return False
    manifest = json.loads((run_dir / "manifest.json").read_text())
    listed = {entry["path"]: entry["sha256"] for entry in manifest["outputs"]}
    files = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
    assert set(listed) == files - {"manifest.json"}
    for name, digest in listed.items():
        assert sha256(run_dir / name) == digest, name
    return True


def hidden(out):
    return sorted(p.name for p in Path(out).iterdir() if p.name.startswith("."))


def staging(out):
    return [p for p in Path(out).glob(f".{AS_OF}.*.staging") if p.is_dir()]


def _started(out, known):
    return True


def _staging_made(out, known):
    return bool(set(staging(out)) - known)


def _files_written(out, known):
    return any(p.is_file() for folder in set(staging(out)) - known for p in folder.rglob("*"))


def _manifest_written(out, known):
    return any((folder / "manifest.json").exists() for folder in set(staging(out)) - known) or (
        Path(out) / AS_OF).exists()


def kill_when(process, out, condition, timeout=240.0):
    """Poll ``out`` every few ms; SIGKILL ``process`` as soon as ``condition`` holds.

    ``condition(out, known)`` looks at staging folders other than the ``known`` ones,
    those that were there before the process started.
    """
    known = set(staging(out))
    deadline = time.monotonic() + timeout
    while not condition(out, known):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the kill point was never reached"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


# (kill point, run options, condition polled on the output folder, leaves a staging folder)
KILLS = [
    ("files in staging, as-of from the data", (), _files_written, True),
    ("just after start", ("--as-of", AS_OF), _started, False),
    ("staging folder made", ("--as-of", AS_OF), _staging_made, True),
    ("files in staging", ("--as-of", AS_OF), _files_written, True),
    ("around publish", ("--as-of", AS_OF), _manifest_written, False),
]


def test_killed_runs_leave_nothing_or_a_complete_run_and_the_next_run_cleans_up(config,
                                                                               tmp_path):
    """Runs killed one after the other at several points, in one output folder (each run
    cleans up after the previous one), then a run that completes."""
    out = tmp_path / "out"
    out.mkdir()
    for point, options, condition, leaves_staging in KILLS:
        process = subprocess.Popen(args(config, out, *options, "--force"),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if condition is _started:
            time.sleep(0.3)
        kill_when(process, out, condition)
        published(out)  # nothing new, or complete with a matching manifest
        left = staging(out)
        assert len(left) <= 1, (point, left)  # each run removed the previous one's
        assert len(left) == 1 or not leaves_staging, f"{point}: the kill came too late"

    again = run(config, out, "--as-of", AS_OF, "--force")
    assert again.returncode == 0, again.stderr
    assert published(out)
    if left:
        assert (f"removed 1 leftover(s) of killed runs in {out}: removed {left[0].name}"
                in again.stderr)
    assert hidden(out) == []  # no staging folder, no set-aside run, no lock file
    assert [p.name for p in out.iterdir()] == [AS_OF]


def test_a_live_runs_staging_folder_is_never_removed(config, tmp_path):
    """Deterministic: this test holds the lock of out/<as_of>, as a live run would."""
    out = tmp_path / "out"
    out.mkdir()
    lock = lock_path(out / AS_OF)
    live = out / f".{AS_OF}.abcd1234.staging"  # the live run's staging folder
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write("4242\n")
        handle.flush()
        live.mkdir()
        refused = run(config, out, "--as-of", AS_OF)
        assert refused.returncode == 5
        assert refused.stderr.splitlines() == [
            f"error: {out / AS_OF} is being written by another run (lock file {lock}, pid "
            "4242); try again when it has finished. Nothing was written."]
        assert remove_leftovers(out) == []  # what a run of another date does
        assert live.is_dir() and lock.is_file()
    # its holder is gone (the lock is free): now they are leftovers
    assert remove_leftovers(out) == [f"removed {live.name}"]
    assert hidden(out) == []


def test_two_runs_at_once_one_publishes_the_other_exits_5(config, tmp_path):
    """Two real processes on one folder and as-of date: the second starts while the first
    holds the lock (its staging folder exists), so it is refused, whatever the timing."""
    out = tmp_path / "out"
    out.mkdir()
    first = subprocess.Popen(args(config, out, "--as-of", AS_OF), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not staging(out):
        assert first.poll() is None, first.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.005)
    second = run(config, out, "--as-of", AS_OF)
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 5, second.stderr
    assert ("is being written by another run" in second.stderr
            or "already exists" in second.stderr)
    assert len(second.stderr.splitlines()) == 1 and "Traceback" not in second.stderr
    assert published(out)
    assert hidden(out) == []


def test_a_run_set_aside_by_a_killed_force_run_is_put_back(config, tmp_path):
    """Killed between moving the old run aside and renaming the new one in (a window too
    short to hit with a signal, so the state is laid out by hand): the old run comes back,
    and the next run, without --force, is refused because of it."""
    out = tmp_path / "out"
    aside = out / f".{AS_OF}.x1y2z3ab.old"
    (aside / AS_OF / "campaigns").mkdir(parents=True)
    (aside / AS_OF / "manifest.json").write_text("{}\n")
    (aside / AS_OF / "campaigns" / "winback.csv").write_text("customer_id\n1\n")
    (out / f".{AS_OF}.q9w8e7r6.staging").mkdir()
    refused = run(config, out, "--as-of", AS_OF)
    assert refused.returncode == 5
    assert (f"removed 2 leftover(s) of killed runs in {out}: removed .{AS_OF}.q9w8e7r6.staging; "
            f"restored {AS_OF} from {aside.name}; removed {aside.name}") in refused.stderr
    assert refused.stderr.splitlines()[-1].startswith(f"error: {out / AS_OF} already exists")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        AS_OF, f"{AS_OF}/campaigns", f"{AS_OF}/campaigns/winback.csv", f"{AS_OF}/manifest.json"]


def test_publish_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    target = tmp_path / "out" / AS_OF
    code = ("import sys, time; from rfm_engine.io.writers import publish_lock\n"
            "with publish_lock(sys.argv[1]):\n"
            "    print('locked', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputBusyError, match="is being written by another run"):
            with publish_lock(target, grace=0.2):
                pass
    finally:
        holder.kill()  # SIGKILL: the OS releases the lock
        holder.wait()
    with publish_lock(target, grace=0) as removed:
        assert removed == []
        with publish_lock(target) as nested:  # the same process may nest
            assert nested == []
    assert list(target.parent.iterdir()) == []  # the killed holder's lock file is gone too


def test_stale_lock_files_are_removed_and_foreign_ones_kept(tmp_path):
    (tmp_path / ".2025-12-24.lock").write_text("12345\n")  # a killed run's: nobody holds it
    (tmp_path / ".2025-12-17.lock").write_text("")
    (tmp_path / ".notes.lock").write_text("not one of ours\n")
    assert remove_leftovers(tmp_path) == []  # lock files are not counted as leftovers
    assert hidden(tmp_path) == [".notes.lock"]
