import json

import pytest

from osrl_unlearn.io import atomic_path, file_sha256, write_json


def test_atomic_path_publishes_only_on_success(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    assert (
        file_sha256(target) == "a4c3ed04a95a3da14a9d235c83d868bed7c0f45cf7f3faa751ee8f50598d2211"
    )  # sha256 of b"done"


def test_atomic_path_refuses_to_overwrite(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("original")
    with pytest.raises(FileExistsError, match="exists"):
        with atomic_path(target):
            pass
    with atomic_path(target, overwrite=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_write_json_makes_its_folder_replaces_the_old_file_and_keeps_it_on_failure(tmp_path):
    target = tmp_path / "cell" / "relabel.json"
    write_json(target, {"cost": 0.5})
    write_json(target, {"cost": 0.25, "seeds": [0, 1]})
    assert json.loads(target.read_text()) == {"cost": 0.25, "seeds": [0, 1]}
    with pytest.raises(TypeError):
        write_json(target, {"cost": object()})  # not JSON: fails before anything is written
    assert json.loads(target.read_text()) == {"cost": 0.25, "seeds": [0, 1]}
    assert sorted(p.name for p in target.parent.iterdir()) == ["relabel.json"]
