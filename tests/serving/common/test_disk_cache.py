"""The disk cache: computed once per key in the folder it is given, recomputed when the key or an input changes."""

import subprocess
import sys
import textwrap
from pathlib import Path

from serving.common.disk_cache import DiskCache, cache_folder, files_digest


def test_computed_once_per_key(tmp_path):
    cache, calls = DiskCache(tmp_path), []
    compute = lambda: calls.append(1) or {"value": len(calls)}
    assert cache("things", ("a", 1), compute) == {"value": 1}
    assert cache("things", ("a", 1), compute) == {"value": 1}
    assert cache("things", ("a", 2), compute) == {"value": 2}
    assert len(calls) == 2
    assert len(list(tmp_path.glob("things/*.pickle"))) == 2
    assert not list(tmp_path.glob("things/*.tmp"))


def test_kept_across_instances_of_one_folder(tmp_path):
    DiskCache(tmp_path)("things", "k", lambda: 41)
    assert DiskCache(tmp_path)("things", "k", lambda: 42) == 41


def test_without_a_folder_nothing_is_kept(tmp_path):
    calls = []
    cache = DiskCache(None)
    assert cache("things", "k", lambda: calls.append(1) or len(calls)) == 1
    assert cache("things", "k", lambda: calls.append(1) or len(calls)) == 2


def test_the_folder_comes_from_the_environment_given():
    assert str(cache_folder({"HEADROOM_CACHE": "/x/y"})) == "/x/y"
    assert cache_folder({}).parts[-2:] == (".cache", "headroom")


def test_file_digest_follows_content(tmp_path):
    trace = tmp_path / "chunk-1-trace.csv"
    trace.write_text("0,1.0,1.0,Gamma,1.0,1.0\n")
    before = files_digest([trace])
    trace.write_text("0,2.0,1.0,Gamma,1.0,1.0\n")
    assert files_digest([trace]) != before


def test_processes_asking_at_once_compute_once(tmp_path):
    """Two processes ask for the same key while it is being computed: one computes, the other waits and reads."""
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from serving.common.disk_cache import DiskCache
        log = Path(sys.argv[1]) / "computed"
        def compute():
            with open(log, "a") as f:
                f.write("x")
            time.sleep(1.0)
            return 7
        print(DiskCache(Path(sys.argv[1]))("things", "k", compute))
        """
    )
    root = Path(__file__).resolve().parents[3]
    command = [sys.executable, "-c", script, str(tmp_path)]
    runs = [subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE) for _ in range(2)]
    assert [run.communicate(timeout=60)[0].strip() for run in runs] == [b"7", b"7"]
    assert (tmp_path / "computed").read_text() == "x"


def test_get_reads_what_is_kept_and_computes_nothing(tmp_path):
    from serving.common.disk_cache import DiskCache

    cache = DiskCache(tmp_path)
    assert cache.get("k", ("a", 1)) is None and DiskCache(None).get("k", ("a", 1)) is None
    assert cache("k", ("a", 1), lambda: 42) == 42
    assert cache.get("k", ("a", 1)) == 42
