"""The disk cache: computed once per key, recomputed when the key or an input file changes."""

from serving.disk_cache import cached, files_digest


def test_computed_once_per_key(tmp_path, monkeypatch):
    monkeypatch.setenv("HEADROOM_CACHE", str(tmp_path))
    calls = []
    compute = lambda: calls.append(1) or {"value": len(calls)}
    assert cached("things", ("a", 1), compute) == {"value": 1}
    assert cached("things", ("a", 1), compute) == {"value": 1}
    assert cached("things", ("a", 2), compute) == {"value": 2}
    assert len(calls) == 2
    assert not list(tmp_path.glob("things/*.tmp"))


def test_file_digest_follows_content(tmp_path):
    trace = tmp_path / "chunk-1-trace.csv"
    trace.write_text("0,1.0,1.0,Gamma,1.0,1.0\n")
    before = files_digest([trace])
    trace.write_text("0,2.0,1.0,Gamma,1.0,1.0\n")
    assert files_digest([trace]) != before
