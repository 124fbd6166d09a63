import pytest

from exporters.gateway.tenants import ANONYMOUS, OTHER, KeyRing, KeysFileError, TenantLabels


def test_bearer_keys_map_to_tenants(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("sk-alpha-123: alpha\nsk-beta-4567: beta\n")
    ring = KeyRing.from_file(path)
    assert ring.tenant("Bearer sk-alpha-123") == "alpha" and ring.tenant("bearer sk-beta-4567") == "beta"
    assert ring.tenant("Bearer sk-wrong-000") is None and ring.tenant(None) is None and ring.tenant("Basic abc") is None
    assert KeyRing.from_file(None).tenant(None) == ANONYMOUS


@pytest.mark.parametrize(
    "text, problem",
    [
        ("- a\n- b\n", "mapping"),
        ("short: alpha\n", "at least 8"),
        ("sk-alpha-123: other\n", "tenant must be a name"),
        ("a: [\n", "not valid YAML"),
        ("sk-alpha-123: a\nsk-beta-4567: b\nsk-alpha-123: c\n", "line 3: .* already given on line 1"),
    ],
)
def test_bad_keys_files_name_the_problem(tmp_path, text, problem):
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    with pytest.raises(KeysFileError, match=problem):
        KeyRing.from_file(path)


def test_tenant_label_is_capped_to_the_busiest():
    labels = TenantLabels(cap=3, every=100)
    for i in range(1000):  # 500 one-off tenants, and two busy ones
        labels.label(f"once-{i}") if i % 2 else labels.label("busy-a" if i % 4 else "busy-b")
    seen = {labels.label(t) for t in ["busy-a", "busy-b", "once-1", "once-999", "new"]}
    assert {"busy-a", "busy-b"} <= seen and OTHER in seen
    assert len(labels.labelled) <= 3
    assert len(labels.counts) < 200  # one-off tenants are forgotten as their counts decay


@pytest.mark.parametrize(
    "text",
    [
        "sk-secret-0001: alpha\nsk-secret-0002: [\n",
        "sk-secret-0001: alpha\nsk-secret-0001: b\n",
        "sk-secret-0001: other\n",
        "sk-secret-0001: {nested: map}\n",
        "sk-se: alpha\n",
    ],
)
def test_keys_file_errors_never_show_a_key(tmp_path, text):
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    with pytest.raises(KeysFileError) as err:
        KeyRing.from_file(path)
    assert "sk-se" not in str(err.value) and "line" in str(err.value)


def test_keys_are_looked_up_by_their_hash():
    ring = KeyRing({f"sk-tenant-{i:05d}": f"t{i}" for i in range(10_000)})
    assert ring.tenant("Bearer sk-tenant-09999") == "t9999"
    assert ring.tenant("Bearer " + "x" * (4 << 20)) is None
    assert all(len(digest) == 32 for digest in ring.by_digest)  # SHA-256 digests: the keys themselves are not kept
