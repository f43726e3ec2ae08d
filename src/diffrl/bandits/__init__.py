"""The 2-D bandit tasks of BANDITS.md: data sets, metrics and plots."""

from diffrl.bandits.metrics import bandit_metrics, mode_shares, nearest_data_distance, support_rate
from diffrl.bandits.plots import plot_panels
from diffrl.bandits.tasks import (
    TASK_NAMES,
    BanditTask,
    make_bandit_dataset,
    make_task,
    sample_data,
    to_task_coords,
    to_unit,
)

__all__ = [
    "TASK_NAMES",
    "BanditTask",
    "bandit_metrics",
    "make_bandit_dataset",
    "make_task",
    "mode_shares",
    "nearest_data_distance",
    "plot_panels",
    "sample_data",
    "support_rate",
    "to_task_coords",
    "to_unit",
]
