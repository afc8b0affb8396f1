import h5py
import numpy as np
import pytest

from osrl_unlearn.data import (
    FORMAT_VERSION,
    DatasetError,
    OfflineDataset,
    load_dataset,
    read_hdf5,
    write_hdf5,
)
from osrl_unlearn.data.hdf5 import check_with_dsrl
from osrl_unlearn.tasks import get_task
from tests.conftest import CAR_CIRCLE, make_arrays


@pytest.fixture
def poisoned(arrays):
    mask = np.zeros(1000, dtype=bool)
    mask[500:750] = True
    arrays["poison_mask"] = mask
    return OfflineDataset.from_arrays(arrays, attrs={"task": CAR_CIRCLE, "seed": 3})


def test_round_trip_keeps_arrays_mask_and_attributes(tmp_path, poisoned):
    path = write_hdf5(
        tmp_path / "d.hdf5", poisoned, {"attack": "max-cost", "config": {"ratio": 0.15}}
    )
    back = read_hdf5(path)
    for key, value in poisoned.arrays().items():
        np.testing.assert_array_equal(getattr(back, key), value)
        assert getattr(back, key).dtype == value.dtype
    assert back.attrs["task"] == CAR_CIRCLE and back.attrs["seed"] == 3
    assert back.attrs["attack"] == "max-cost" and back.attrs["config"] == {"ratio": 0.15}
    assert back.attrs["format_version"] == FORMAT_VERSION


def test_dsrl_loader_reads_our_file(tmp_path, poisoned):
    path = write_hdf5(tmp_path / "d.hdf5", poisoned)
    assert check_with_dsrl(path, CAR_CIRCLE) == 1000


def test_dsrl_loader_rejection_is_reported(tmp_path):
    wide = OfflineDataset.from_arrays(make_arrays(obs_dim=5))
    path = write_hdf5(tmp_path / "wide.hdf5", wide)
    with pytest.raises(DatasetError, match="dsrl's loader rejected"):
        check_with_dsrl(path, CAR_CIRCLE)


def test_write_never_overwrites_by_default(tmp_path, poisoned):
    path = write_hdf5(tmp_path / "d.hdf5", poisoned)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_hdf5(path, OfflineDataset.from_arrays(make_arrays(seed=1)))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.hdf5"]  # no temp file left behind


def test_missing_key_in_file(tmp_path, arrays):
    path = tmp_path / "bad.hdf5"
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            if key != "terminals":
                handle[key] = value
    with pytest.raises(DatasetError, match="missing DSRL key.*terminals"):
        read_hdf5(path)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DatasetError, match="no such file.*make-dataset"):
        read_hdf5(tmp_path / "nope.hdf5")
    (tmp_path / "junk.hdf5").write_text("not hdf5")
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        read_hdf5(tmp_path / "junk.hdf5")


def test_file_of_another_task_is_refused(tmp_path, poisoned):
    path = write_hdf5(tmp_path / "d.hdf5", poisoned)
    with pytest.raises(
        DatasetError, match="made for OfflineCarCircle-v0, not OfflineBallCircle-v0"
    ):
        read_hdf5(path, "OfflineBallCircle-v0")


def test_load_by_task_name_reads_the_dsrl_cache(tmp_path, monkeypatch, arrays):
    from dsrl import offline_env

    monkeypatch.setattr(offline_env, "DATASET_PATH", str(tmp_path))
    with pytest.raises(DatasetError, match="no DSRL dataset for OfflineCarCircle-v0.*make-dataset"):
        load_dataset(CAR_CIRCLE)
    cached = get_task(CAR_CIRCLE).dsrl_cache_path
    assert cached.name == "SafetyCarCircle-v0-100-1450.hdf5"
    write_hdf5(cached, OfflineDataset.from_arrays(arrays))
    data = load_dataset(CAR_CIRCLE)
    assert len(data) == 1000
    np.testing.assert_array_equal(data.actions, arrays["actions"])
