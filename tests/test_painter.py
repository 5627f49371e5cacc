"""The painter: pictures drawn in helper processes where the command line started them (the
CLI tests cover that path end to end), in place everywhere else."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from multiclass.reporting import plots
from multiclass.reporting.layer_rows import LayerRow, figure
from multiclass.reporting.painter import Painter

ROWS = [
    {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.1, "val_acc": 0.4},
    {"epoch": 2, "train_loss": 0.5, "train_acc": 0.8, "val_loss": 0.7, "val_acc": 0.7},
]


def test_without_helpers_a_picture_is_drawn_at_once(tmp_path: Path):
    painter = Painter()
    assert not painter.start()  # torch is imported in this process: no fork after it
    painter.draw("curves.png", plots.curves, ROWS, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert painter.undrawn() == []


def test_helpers_draw_and_report_what_they_could_not(tmp_path: Path):
    painter = Painter()
    assert painter.start(helpers=1, method="spawn")
    painter.draw("curves.png", plots.curves, ROWS, tmp_path / "curves.png")
    painter.draw("broken.png", plots.curves, [{"epoch": 1}], tmp_path / "broken.png")
    painter.wait()  # as a run does before a tracker copies its folder: failures are kept
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "broken.png").exists()
    assert painter.undrawn() == ["broken.png not drawn: KeyError: 'val_loss'"]
    assert painter.undrawn() == []  # reported once


def test_the_plane_is_sampled_row_by_row_as_the_boundary_image_reads_it():
    points = np.array([[0.0, 10.0], [1.0, 20.0]])
    x0, x1 = plots.plane(points, steps=3)
    assert x0[0] < 0.0 < 1.0 < x0[-1] and x1[0] < 10.0 < 20.0 < x1[-1]  # a margin each side
    grid = plots.plane_points(x0, x1)
    rows = grid.reshape(len(x1), len(x0), 2)  # decision_boundary's reshape of the response
    assert np.allclose(rows[:, :, 0], x0[None, :]) and np.allclose(rows[:, :, 1], x1[:, None])


def test_a_kept_figure_redrawn_with_new_data_equals_one_drawn_afresh(tmp_path: Path):
    rng = np.random.default_rng(0)
    names = [f"class {i}" for i in range(4)]
    images = rng.integers(0, 256, (30, 1, 8, 8), dtype=np.uint8)
    points = rng.normal(size=(40, 2)).astype(np.float32)

    def pictures(seed: int) -> dict:
        rng = np.random.default_rng(seed)
        labels, guesses = rng.integers(0, 4, 30), rng.integers(0, 4, 30)
        sides = rng.integers(0, 3, 40)
        chosen = plots.grid_choice(labels, guesses)
        x0, x1 = plots.plane(points * (1 + seed))
        rows = [{**row, "train_loss": row["train_loss"] * (1 + seed)} for row in ROWS]
        layer_rows = [
            LayerRow(epoch, 1, "Linear", grad_norm=float(rng.random()) * 10.0**-seed)
            for epoch in range(3)
        ] + [LayerRow(epoch, 2, "ReLU", dead=float(rng.random())) for epoch in range(3)]
        return {
            "curves": lambda p: plots.curves(rows, p),
            "confusion": lambda p: plots.confusion_matrix(labels, guesses, names, f"{seed}", p),
            "grid": lambda p: plots.prediction_grid(
                images[chosen], chosen, labels, guesses, names, p
            ),
            "boundary": lambda p: plots.decision_boundary(
                points * (1 + seed), sides, x0, x1, rng.integers(0, 3, 40000), names, p
            ),
            "layers": lambda p: figure(layer_rows, p),
        }

    for name, draw in pictures(1).items():
        draw(tmp_path / f"{name}-first.png")  # the figure each layout keeps
    for name, draw in pictures(2).items():
        draw(tmp_path / f"{name}-kept.png")
    plots._kept.clear()
    for name, draw in pictures(2).items():
        draw(tmp_path / f"{name}-fresh.png")
        kept, fresh = (tmp_path / f"{name}-{how}.png" for how in ("kept", "fresh"))
        assert kept.read_bytes() == fresh.read_bytes(), name
        assert kept.read_bytes() != (tmp_path / f"{name}-first.png").read_bytes(), name


def test_each_thread_keeps_its_own_figures():
    def build() -> object:
        return object()

    here = plots.kept(("thread test",), build)
    with ThreadPoolExecutor(1) as pool:
        there = pool.submit(plots.kept, ("thread test",), build).result()
    assert plots.kept(("thread test",), build) is here and there is not here
