"""A grid never pools results measured on two different datasets."""

import json

import pytest

from osrl_unlearn.benchmark.provenance import (
    DataMismatchError,
    check_or_record,
    file_hash,
    fingerprint,
    record_path,
)

TASK = "OfflineCarCircle-v0"


def files(clean="c1", threshold=0.15, **poisoned):
    return {"clean": {"content_hash": clean, "competence_threshold": threshold},
            "poisoned": poisoned or {"max-cost-0.05-seed0.hdf5": "p1"}}  # fmt: skip


def test_the_first_run_records_its_files_and_a_resumed_run_on_the_same_files_passes(tmp_path):
    check_or_record(tmp_path, TASK, files())
    record = json.loads(record_path(tmp_path, TASK).read_text())
    assert record == {"task": TASK, **files()}
    check_or_record(tmp_path, TASK, files())  # the same files: nothing to say
    # a new attack's file joins the record; the recorded ones stay
    check_or_record(tmp_path, TASK, files(**{"max-reward-0.05-seed0.hdf5": "p2"}))
    assert json.loads(record_path(tmp_path, TASK).read_text())["poisoned"] == {
        "max-cost-0.05-seed0.hdf5": "p1", "max-reward-0.05-seed0.hdf5": "p2"}  # fmt: skip


def test_remade_files_that_differ_stop_the_grid_with_the_fix(tmp_path):
    check_or_record(tmp_path, TASK, files())
    with pytest.raises(DataMismatchError, match="clean file made here .*--results_dir"):
        check_or_record(tmp_path, TASK, files(clean="c2"))
    with pytest.raises(DataMismatchError, match="max-cost-0.05-seed0.hdf5 made here"):
        check_or_record(tmp_path, TASK, files(**{"max-cost-0.05-seed0.hdf5": "p9"}))
    assert json.loads(record_path(tmp_path, TASK).read_text()) == {"task": TASK, **files()}


def test_results_from_before_the_record_are_checked_by_their_competence_threshold(tmp_path):
    clean = tmp_path / "cells" / TASK / "bcql" / "seed0" / "clean.json"
    clean.parent.mkdir(parents=True)
    clean.write_text(json.dumps({"competence_threshold": 0.148289435709442}))
    with pytest.raises(DataMismatchError, match="competence_threshold 0.14814"):
        check_or_record(tmp_path, TASK, files(threshold=0.14814182033558426))
    assert not record_path(tmp_path, TASK).exists()
    check_or_record(tmp_path, TASK, files(threshold=0.148289435709442))
    assert record_path(tmp_path, TASK).is_file()


def test_the_fingerprint_hashes_the_files_contents(quick_car_circle, poisoned_file):
    from osrl_unlearn.data import read_hdf5

    clean_path = str(quick_car_circle[1].path)
    made = fingerprint(clean_path, [str(poisoned_file)], cost_limit=10.0)
    assert made["clean"]["content_hash"] == read_hdf5(clean_path).content_hash()
    # the poisoned copy holds the same arrays and flags rows: its mask is part of its hash
    assert read_hdf5(poisoned_file).content_hash() == made["clean"]["content_hash"]
    assert made["poisoned"]["poisoned.hdf5"] != made["clean"]["content_hash"]
    assert made["poisoned"]["poisoned.hdf5"] == file_hash(read_hdf5(poisoned_file))
