"""DSRL datasets: loading, validation, keep/forget splitting and fast batch sampling."""

from osrl_unlearn.data.dataset import DSRL_KEYS, DatasetError, OfflineDataset
from osrl_unlearn.data.hdf5 import FORMAT_VERSION, load_dataset, read_hdf5, write_hdf5
from osrl_unlearn.data.sampler import (
    BatchSampler,
    DatasetStats,
    dataset_stats,
    is_init_flags,
    layout_for,
    training_scales,
    unlearning_samplers,
)

__all__ = [
    "DSRL_KEYS",
    "FORMAT_VERSION",
    "BatchSampler",
    "DatasetError",
    "DatasetStats",
    "OfflineDataset",
    "dataset_stats",
    "is_init_flags",
    "layout_for",
    "load_dataset",
    "read_hdf5",
    "training_scales",
    "unlearning_samplers",
    "write_hdf5",
]
