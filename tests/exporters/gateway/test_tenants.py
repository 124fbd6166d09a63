import pytest

from exporters.gateway.tenants import ANONYMOUS, OTHER, KeyRing, KeysFileError, TenantLabels


def test_bearer_keys_map_to_tenants(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("sk-alpha-123: alpha\nsk-beta-4567: beta\n")
    ring = KeyRing.from_file(path)
    assert ring.tenant("Bearer sk-alpha-123") == "alpha" and ring.tenant("bearer sk-beta-4567") == "beta"
    assert ring.tenant("Bearer sk-wrong-000") is None and ring.tenant(None) is None and ring.tenant("Basic abc") is None
    assert KeyRing.from_file(None).tenant(None) == ANONYMOUS


@pytest.mark.parametrize("text, problem", [("- a\n- b\n", "mapping"), ("short: alpha\n", "at least 8"),
                                           ("sk-alpha-123: other\n", "tenant must be a name"), ("a: [\n", "not valid YAML")])
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
