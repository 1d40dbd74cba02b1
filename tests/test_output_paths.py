"""Output paths: every bad output is refused before any work, in one line, leaving nothing
behind; side files never collide across formats; several files are written all-or-nothing.

The commands run as real subprocesses of the installed ``rfm-engine``.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rfm_engine.errors import OutputError, OutputExistsError
from rfm_engine.io.writers import (
    check_output_folder,
    check_outputs,
    remove_leftovers,
    remove_stale_temps,
    table_writer,
    text_writer,
    write_all,
)

RFM = [str(Path(sys.executable).with_name("rfm-engine"))]


def run(*args, cwd=None):
    return subprocess.run([*RFM, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def snapshot(folder):
    """Every entry under ``folder`` (hidden ones too): files by hash, folders by name."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            found[(Path(root) / name).relative_to(folder).as_posix()] = "<dir>"
        for name in files:
            path = Path(root) / name
            found[path.relative_to(folder).as_posix()] = hashlib.sha256(
                path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def tx(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,order_date,amount\n"
                    "a,2024-01-01,10\na,2024-02-01,20\nb,2024-01-15,5\nc,2024-03-01,7\n"
                    "d,2024-03-02,9\nd,2024-03-20,1\n")
    return path


def _file(tmp_path, name="file.csv"):
    (tmp_path / name).write_text("not a folder\n")


def _folder(tmp_path, name="some_dir.csv"):
    (tmp_path / name).mkdir()


def _side_file(tmp_path):
    (tmp_path / "o.csv.quality.json").write_text("{}\n")


# (id, setup, command arguments after the input, exit code, expected message (format with tmp))
CASES = [
    ("parent_is_a_file", _file, ("features", "{tx}", "-o", "{tmp}/file.csv/out.csv"), 2,
     "error: --output '{tmp}/file.csv/out.csv': '{tmp}/file.csv' is a file, not a folder."),
    ("grandparent_is_a_file", _file, ("segment", "{tx}", "-o", "{tmp}/file.csv/a/out.csv"), 2,
     "error: --output '{tmp}/file.csv/a/out.csv': '{tmp}/file.csv' is a file, not a folder."),
    ("output_is_a_folder", _folder, ("segment", "{tx}", "-o", "{tmp}/some_dir.csv", "--force"),
     2, "error: --output '{tmp}/some_dir.csv' is a folder; give a file name"),
    ("save_model_is_the_output", None,
     ("segment", "{tx}", "-o", "{tmp}/o.csv", "--save-model", "{tmp}/o.csv"), 2,
     "error: --save-model '{tmp}/o.csv' is the same file as --output '{tmp}/o.csv'"),
    ("save_model_is_a_side_file", None,
     ("segment", "{tx}", "-o", "{tmp}/o.csv", "--save-model", "{tmp}/o.csv.summary.csv"), 2,
     "error: --save-model '{tmp}/o.csv.summary.csv' is the same file as side file"),
    ("params_out_parent_is_a_file", _file,
     ("clv", "{tx}", "-o", "{tmp}/c.csv", "--params-out", "{tmp}/file.csv/p.json"), 2,
     "error: --params-out '{tmp}/file.csv/p.json': '{tmp}/file.csv' is a file, not a folder."),
    ("side_file_exists", _side_file, ("segment", "{tx}", "-o", "{tmp}/o.csv"), 5,
     "error: {tmp}/o.csv.quality.json already exists; pass --force"),
    ("kpis_output_is_a_folder", _folder,
     ("kpis", "{tx}", "-o", "{tmp}/some_dir.csv", "--force"), 2, "is a folder"),
    ("run_output_dir_is_a_file", _file,
     ("run", "--input", "{tx}", "--output-dir", "{tmp}/file.csv", "--no-suppression",
      "--no-tracking"), 2,
     "error: output folder '{tmp}/file.csv': '{tmp}/file.csv' is a file, not a folder."),
    ("run_output_dir_parent_is_a_file", _file,
     ("run", "--input", "{tx}", "--as-of", "2024-03-31", "--output-dir", "{tmp}/file.csv/out",
      "--no-suppression", "--no-tracking"), 2, "'{tmp}/file.csv' is a file, not a folder."),
    ("sample_folder_under_a_file", _file,
     ("sample", "{tmp}/file.csv/data", "--customers", "10"), 2,
     "error: DIRECTORY '{tmp}/file.csv/data': '{tmp}/file.csv' is a file, not a folder."),
    ("promote_folder_is_a_file", _file, ("models", "promote", "1", "--folder", "{tmp}/file.csv"),
     2, "error: --folder '{tmp}/file.csv': '{tmp}/file.csv' is a file, not a folder."),
]


@pytest.mark.parametrize(("setup", "args", "code", "message"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_output_is_refused_before_any_work(tmp_path, tx, setup, args, code, message):
    if setup is not None:
        setup(tmp_path)
    before = snapshot(tmp_path)
    result = run(*(a.format(tx=tx, tmp=tmp_path) for a in args))
    assert result.returncode == code, result.stderr
    # one line, and no progress line before it: nothing was loaded or computed
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert message.format(tmp=tmp_path) in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_unwritable_folder_is_refused(tmp_path, tx):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        result = run("features", tx, "-o", locked / "sub" / "o.csv")
    finally:
        locked.chmod(0o700)
    assert result.returncode == 2
    assert f"cannot write into folder '{locked}'" in result.stderr
    assert not any(locked.iterdir())


def test_side_files_of_csv_and_parquet_outputs_do_not_collide(tmp_path, cdnow):
    """The README's two cluster examples run one after the other."""
    tx = tmp_path / "cdnow.csv"
    cdnow.to_csv(tx, index=False)
    common = ("--columns", "order_date=date", "--date-format", "%Y%m%d", "--k", "3")
    first = run("cluster", tx, *common, "-o", tmp_path / "out" / "clusters.csv")
    assert first.returncode == 0, first.stderr
    second = run("cluster", tx, *common, "-o", tmp_path / "out" / "clusters.parquet")
    assert second.returncode == 0, second.stderr
    sides = ("quality.json", "clusters.csv", "crosstab.csv", "k_scores.csv", "elbow.png",
             "silhouette.png")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted([f"clusters.{fmt}{side}" for fmt in ("csv", "parquet")
                            for side in ("", *(f".{s}" for s in sides))])
    assert (pd.read_csv(tmp_path / "out" / "clusters.csv.clusters.csv").to_numpy().tolist()
            == pd.read_csv(tmp_path / "out" / "clusters.parquet.clusters.csv")
            .to_numpy().tolist())


def test_segment_side_files_keep_the_output_name(tmp_path, tx):
    for name in ("s.csv", "s.parquet"):
        result = run("segment", tx, "--bins", "2", "-o", tmp_path / name)
        assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("s.")) == [
        "s.csv", "s.csv.quality.json", "s.csv.summary.csv",
        "s.parquet", "s.parquet.quality.json", "s.parquet.summary.csv"]


# --- write_all: all-or-nothing, for real ------------------------------------------------------


class Injected(RuntimeError):
    pass


def test_write_all_restores_earlier_files_when_a_rename_fails(tmp_path):
    """The last rename fails (its target became a folder meanwhile): the files already
    renamed are taken back and the ones they replaced restored."""
    old = tmp_path / "a.txt"
    old.write_text("earlier a\n")
    late = tmp_path / "c.txt"

    def becomes_a_folder(tmp):
        Path(tmp).write_text("new c\n")
        late.mkdir()  # after the checks, before the renames

    with pytest.raises(OutputError, match=r"could not write .*c\.txt: Is a directory\. "
                                          r"Nothing was written\."):
        write_all({old: text_writer("new a\n"), tmp_path / "sub" / "b.txt": text_writer("b\n"),
                   late: becomes_a_folder}, force=True)
    assert old.read_text() == "earlier a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "c.txt"]  # no temp, no sub/
    assert not any(late.iterdir())


def test_write_all_leaves_nothing_when_a_writer_fails(tmp_path):
    old = tmp_path / "a.txt"
    old.write_text("earlier a\n")

    def fails(tmp):
        Path(tmp).write_text("half")
        raise Injected("injected failure")

    with pytest.raises(Injected, match="injected failure"):
        write_all({old: text_writer("new a\n"), tmp_path / "new" / "deep" / "b.txt": fails},
                  force=True)
    assert old.read_text() == "earlier a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_write_all_checks_every_target_before_writing(tmp_path):
    (tmp_path / "f").write_text("a file\n")
    with pytest.raises(OutputError, match="/f' is a file, not a folder"):
        write_all({tmp_path / "ok.txt": text_writer("x"),
                   tmp_path / "f" / "b.txt": text_writer("y")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_check_outputs_sees_one_file_under_two_spellings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputError, match="'out/../out/x.csv' is the same file as --output"):
        check_outputs([("--output", tmp_path / "out" / "x.csv"),
                       ("--save-model", Path("out/../out/x.csv"))])


def test_check_outputs_names_every_existing_file(tmp_path):
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("")
    with pytest.raises(OutputExistsError, match="a.csv, .*b.csv already exist; pass --force"):
        check_outputs([("--output", tmp_path / "a.csv"), ("side file", tmp_path / "b.csv")])
    check_outputs([("--output", tmp_path / "a.csv"), ("side file", tmp_path / "b.csv")],
                  force=True)


def test_check_output_folder_accepts_a_new_folder_under_an_existing_one(tmp_path):
    check_output_folder(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="output folder '.*f': '.*f' is a file, not a folder"):
        check_output_folder(tmp_path / "f")


# --- temporary files of killed writes ---------------------------------------------------------


WRITER = ("import sys, time\n"
          "from rfm_engine.io.writers import write_all\n"
          "def slow(tmp):\n"
          "    open(tmp, 'w').write('half a row')\n"
          "    print('writing', flush=True)\n"
          "    time.sleep(60)\n"
          "write_all({sys.argv[1]: slow}, force=True)\n")


def _writing(target):
    """Start a real process writing ``target``; return it once its temp file exists."""
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    return process


def test_the_next_write_removes_temp_files_of_killed_writes_only(tmp_path, tx):
    out = tmp_path / "out"
    killed = _writing(out / "x.csv")
    killed.kill()  # SIGKILL: it cannot clean up
    killed.wait()
    leftover = [p.name for p in out.iterdir()]
    assert len(leftover) == 1 and leftover[0].startswith(f".x.csv.pid{killed.pid}.")
    assert leftover[0].endswith(".tmp")
    live = _writing(out / "y.csv")  # a live writer: its temp file stays
    try:
        live_temp = [p.name for p in out.iterdir() if p.name.startswith(".y.csv.")]
        foreign = out / ".x.csv.k3v9x0ab.tmp"  # not named by the engine: kept
        foreign.write_text("someone else's\n")
        result = run("segment", tx, "--bins", "2", "-o", out / "x.csv")
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == sorted(
            [*live_temp, foreign.name])
        assert (out / "x.csv").is_file()
    finally:
        live.kill()
        live.wait()
    assert remove_stale_temps(out) == [f"removed {live_temp[0]}"]  # now it is dead too


def test_a_temp_file_whose_lock_is_held_is_kept_even_if_its_pid_looks_dead(tmp_path):
    """A writer in another pid namespace (a container) holds the flock: never removed."""
    name = ".x.csv.pid999999999.k3v9x0ab.tmp"  # no such process here
    temp = tmp_path / name
    temp.write_text("half")
    code = ("import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(temp)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        write_all({tmp_path / "x.csv": text_writer("a\n")}, force=True)
        assert temp.exists()
    finally:
        holder.kill()
        holder.wait()
    write_all({tmp_path / "x.csv": text_writer("b\n")}, force=True)
    assert not temp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_the_weekly_sweep_removes_temp_files_of_killed_writes_too(tmp_path):
    (tmp_path / ".segments.csv.pid999999999.k3v9x0ab.tmp").write_text("half")
    (tmp_path / ".segments.csv.pid999999999.a1b2c3d4.bak").write_text("old copy")
    (tmp_path / f".segments.csv.pid{os.getpid()}.k3v9x0ab.tmp").write_text("ours: alive")
    assert remove_leftovers(tmp_path) == [
        "removed .segments.csv.pid999999999.a1b2c3d4.bak",
        "removed .segments.csv.pid999999999.k3v9x0ab.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == [
        f".segments.csv.pid{os.getpid()}.k3v9x0ab.tmp"]


def test_a_compact_table_is_written_as_its_file_dtypes_with_the_same_bytes(tmp_path):
    # more rows than a Parquet row group (1024 * 1024), so the writer converts group by group
    n = 1024 * 1024 + 1500
    rng = np.random.default_rng(0)
    codes = rng.integers(-1, 3, n)
    frame = pd.DataFrame({
        "customer_id": pd.array([f"c{i}" for i in range(n)], dtype="str"),
        "group": pd.Categorical.from_codes(codes, categories=pd.Index(["a", "bb", "c"],
                                                                      dtype="str")),
        "value": rng.random(n),
    })
    expected = tmp_path / "expected.parquet"
    frame.astype({"group": "str"}).to_parquet(expected, index=False)
    got = tmp_path / "got.parquet"
    writer = table_writer(frame, ".parquet", dtypes={"group": "str"})
    writer(got)
    assert writer.rows == n
    assert got.read_bytes() == expected.read_bytes()
    back = pd.read_parquet(got)
    assert back["group"].dtype == "str"
    assert back["group"].isna().sum() == (codes == -1).sum()
