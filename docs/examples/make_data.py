"""The made-up data docs/own-data.md and README train on, written into the current folder:
`flowers.csv` (300 rows: two numbers, a colour and a species), `new.csv` (its first three rows
without the species), `unseen.csv` (the same, two of them in colours training never saw),
`gaps.csv` (three cells emptied), `typo.csv` (a `size` column with one cell typed `12,5`),
`shapes/` (100 PNGs of each of three shapes, 32x32, and a file that only pretends to be a
PNG) and `circles/` (a folder with one class). Seeded: every run writes the same files."""

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SPECIES = {  # mean length, mean width, colours and how often each
    "setosa": (1.5, 120.0, {"red": 0.5, "blue": 0.3, "white": 0.2}),
    "versicolor": (2.5, 130.0, {"red": 0.3, "blue": 0.3, "white": 0.4}),
    "virginica": (3.5, 138.0, {"red": 0.2, "blue": 0.6, "white": 0.2}),
}


def flower_rows(count: int, rng: np.random.Generator) -> list[dict[str, str]]:
    """`count` flowers, species in turn, overlapping in every column."""
    rows = []
    for _ in range(count):
        species = list(SPECIES)[rng.integers(len(SPECIES))]
        length, width, colours = SPECIES[species]
        colour = rng.choice(list(colours), p=list(colours.values()))
        rows.append(
            {
                "length": f"{max(0.1, rng.normal(length, 0.7)):.3g}",
                "width": f"{rng.normal(width, 7.0):.1f}",
                "colour": str(colour),
                "species": species,
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_tables(folder: Path, rng: np.random.Generator) -> None:
    rows = flower_rows(300, rng)
    write_csv(folder / "flowers.csv", rows)
    unlabelled = [{key: row[key] for key in ("length", "width", "colour")} for row in rows[:3]]
    write_csv(folder / "new.csv", unlabelled)
    unseen = [dict(row) for row in unlabelled]
    unseen[1]["colour"], unseen[2]["colour"] = "purple", "mauve"
    write_csv(folder / "unseen.csv", unseen)
    gaps = [dict(row) for row in rows]
    gaps[10]["width"], gaps[40]["width"], gaps[40]["colour"] = "", "", ""
    write_csv(folder / "gaps.csv", gaps)
    typo = [{"size": row["length"], "species": row["species"]} for row in rows]
    typo[15]["size"] = "12,5"  # row 17 of the file, its header being row 1
    write_csv(folder / "typo.csv", typo)


def draw(shape: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    """One shape, of a random colour, place and size, on a noisy background."""
    background = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    pen = ImageDraw.Draw(image)
    radius = int(rng.integers(6, 13))
    x, y = (int(value) for value in rng.integers(radius, size - radius, 2))
    colour = tuple(int(value) for value in rng.integers(120, 256, 3))
    box = (x - radius, y - radius, x + radius, y + radius)
    if shape == "circle":
        pen.ellipse(box, fill=colour)
    elif shape == "square":
        pen.rectangle(box, fill=colour)
    else:
        pen.polygon(
            [(x, y - radius), (x - radius, y + radius), (x + radius, y + radius)], fill=colour
        )
    return image


def write_images(folder: Path, rng: np.random.Generator) -> None:
    for shape in ("circle", "square", "triangle"):
        (folder / "shapes" / shape).mkdir(parents=True, exist_ok=True)
        for index in range(100):
            draw(shape, rng).save(folder / "shapes" / shape / f"{index:03d}.png")
    (folder / "shapes" / "square" / "broken.png").write_bytes(b"not a PNG at all")
    (folder / "circles" / "circle").mkdir(parents=True, exist_ok=True)
    for index in range(20):
        draw("circle", rng).save(folder / "circles" / "circle" / f"{index:03d}.png")


def main() -> None:
    folder = Path.cwd()
    rng = np.random.default_rng(0)
    write_tables(folder, rng)
    write_images(folder, rng)
    print("wrote flowers.csv, new.csv, unseen.csv, gaps.csv, typo.csv, shapes/, circles/")


if __name__ == "__main__":
    main()
