"""The `augment` group: per-image crops and flips, torchvision policies per image, drawn from
the run's seed (a rerun gives the same weights; test_resume covers a resume after kill -9)."""

import pytest
import torch
from torchvision.transforms import v2

from multiclass.config import compose_config
from multiclass.datasets.augment import FlipCrop, PerSample
from multiclass.lifecycle.run import execute

FEW = ["dataset.limit=200", "trainer.epochs=2", "trainer.batch_size=50"]


def images(count: int = 16) -> torch.Tensor:
    return torch.randint(1, 256, (count, 1, 8, 8), generator=torch.Generator().manual_seed(0)).to(
        torch.uint8
    )


def windows(image: torch.Tensor, padding: int) -> list[torch.Tensor]:
    """Every crop of the zero-padded image, and its mirror image."""
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    size = image.shape[-1]
    crops = [
        padded[:, top : top + size, left : left + size]
        for top in range(2 * padding + 1)
        for left in range(2 * padding + 1)
    ]
    return crops + [crop.flip(-1) for crop in crops]


def test_flip_crop_gives_each_image_its_own_crop_and_flip_from_the_seed():
    batch = images()
    out = FlipCrop(padding=2)(batch, seed=7)
    assert out.shape == batch.shape and out.dtype == torch.uint8
    for image, augmented in zip(batch, out, strict=True):
        assert any(torch.equal(augmented, window) for window in windows(image, 2))
    assert torch.equal(out, FlipCrop(padding=2)(batch, seed=7))
    assert not torch.equal(out, FlipCrop(padding=2)(batch, seed=8))
    shifts = {tuple((a != 0).nonzero()[0].tolist()) for a in out}  # where each image now starts
    assert len(shifts) > 1  # not one crop for the whole batch
    assert torch.equal(FlipCrop(padding=0, flip=False)(batch, seed=7), batch)


def test_a_torchvision_policy_is_drawn_per_image_and_leaves_torchs_generator_alone():
    batch = images()
    policy = PerSample(v2.TrivialAugmentWide())
    torch.manual_seed(123)
    state = torch.get_rng_state()
    out = policy(batch, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert out.shape == batch.shape and out.dtype == torch.uint8
    assert torch.equal(out, policy(batch, seed=3))
    changed = [not torch.equal(a, b) for a, b in zip(batch, out, strict=True)]
    assert sum(changed) > 0


def run(tmp_path, name, *overrides):
    cfg = compose_config("trainer.progress=false", "plots=false", *FEW, *overrides)
    return execute(cfg, tmp_path / name)


@pytest.mark.parametrize("augment", ["flip_crop", "trivial_augment"])
def test_an_augmented_run_is_repeatable_and_differs_from_an_unaugmented_one(tmp_path, augment):
    first = run(tmp_path, "first", f"augment={augment}")
    again = run(tmp_path, "again", f"augment={augment}")
    plain = run(tmp_path, "plain")
    assert first.status == again.status == plain.status == "completed"
    assert first.summary["weights_sha256"] == again.summary["weights_sha256"]
    assert first.summary["weights_sha256"] != plain.summary["weights_sha256"]


def test_augmenting_a_tables_rows_is_one_line(tmp_path):
    outcome = run(tmp_path, "blobs", "dataset=blobs", "augment=flip_crop")
    assert outcome.status == "failed"
    assert outcome.summary["error"] == (
        "augment (FlipCrop) needs image inputs (channels, height, width); these inputs have"
        " shape (2,): use augment=none"
    )
