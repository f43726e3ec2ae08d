"""One PNG per bandit run: the data coloured by reward, then one panel of samples per method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from diffrl.bandits.tasks import BanditTask

_PANEL_SIZE = 3.2  # inches per panel


def _frame(ax, task: BanditTask, title: str) -> None:
    ax.set_xlim(task.low[0], task.high[0])
    ax.set_ylim(task.low[1], task.high[1])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)


def plot_panels(
    task: BanditTask,
    data_actions_task: np.ndarray,
    data_rewards: np.ndarray,
    panels: dict[str, np.ndarray],
    path: str | Path,
    overwrite: bool = False,
    columns: int = 6,
) -> Path:
    """Write the data panel plus one scatter panel per entry of `panels` (task coordinates), in
    rows of at most `columns` panels.

    Every panel shares the task's box as axis limits; sample panels show the data faintly behind
    the samples. Refuses to replace an existing file unless `overwrite` is True.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    data = np.asarray(data_actions_task).reshape(-1, 2)
    n = 1 + len(panels)
    cols = min(n, columns)
    rows = -(-n // cols)
    fig = Figure(figsize=(_PANEL_SIZE * cols + 0.6, _PANEL_SIZE * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    sc = axes[0].scatter(data[:, 0], data[:, 1], c=np.asarray(data_rewards), s=2, cmap="viridis")
    fig.colorbar(sc, ax=axes[0], fraction=0.046, pad=0.04)
    _frame(axes[0], task, f"{task.name}: data (colour = reward)")
    for ax, (title, pts) in zip(axes[1:n], panels.items(), strict=True):
        pts = np.asarray(pts).reshape(-1, 2)
        ax.scatter(data[:, 0], data[:, 1], s=1, color="0.85", rasterized=True)
        ax.scatter(pts[:, 0], pts[:, 1], s=3, color="tab:red")
        _frame(ax, task, title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
