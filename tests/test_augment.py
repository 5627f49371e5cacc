"""The `augment` group: per-image crops and flips, torchvision policies per image, drawn from
the run's seed (a rerun gives the same weights; test_resume covers a resume after kill -9)."""

import pytest
import torch
from torchvision.transforms import v2

from multiclass.config import compose_config
from multiclass.datasets.augment import FlipCrop, PerSample, check_augmentation
from multiclass.errors import UserError
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


def test_flip_crop_flips_each_image_on_its_own_draw():
    same = images(1).repeat(16, 1, 1, 1)  # one image, 16 times: only the draws tell them apart
    out = FlipCrop(padding=0, flip=True)(same, seed=7)
    flipped = [torch.equal(image, same[0].flip(-1)) for image in out]
    assert all(f or torch.equal(image, same[0]) for f, image in zip(flipped, out, strict=True))
    assert 0 < sum(flipped) < len(out)  # not one flip for the whole batch


def test_a_torchvision_policy_is_drawn_per_image_and_leaves_torchs_generator_alone():
    batch = images()
    policy = PerSample(v2.TrivialAugmentWide())
    torch.manual_seed(123)
    state = torch.get_rng_state()
    out = policy(batch, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert out.shape == batch.shape and out.dtype == torch.uint8
    assert torch.equal(out, policy(batch, seed=3))
    same = images(1).repeat(16, 1, 1, 1)  # one image, 16 times: each draws its own operation
    distinct = {image.numpy().tobytes() for image in policy(same, seed=3)}
    assert len(distinct) > 8  # one operation for the whole batch would give 1


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


def test_an_augment_that_changes_the_image_shape_is_one_line_before_training(tmp_path):
    resize = [
        "augment=trivial_augment",
        "augment.transform._target_=torchvision.transforms.v2.Resize",
    ]
    outcome = run(tmp_path, "resize", *resize, "+augment.transform.size=12")
    assert outcome.status == "failed"
    assert outcome.summary["error"] == (
        "augment: the transform changed the image shape 1x8x8 -> 1x12x12: an augment must keep"
        " the shape (end it with a crop or resize back to 8x8)"
    )
    assert not (tmp_path / "resize" / "metrics.csv").exists()  # before any training


def test_a_transform_given_as_the_augment_itself_says_how_to_write_it(tmp_path):
    bare = "augment={_target_: torchvision.transforms.v2.RandAugment}"
    outcome = run(tmp_path, "bare", bare)
    assert outcome.status == "failed"
    target = "torchvision.transforms.v2.RandAugment"
    assert outcome.summary["error"] == (
        f"augment: {target} transforms one image, and an augment takes a batch and a seed: put"
        " it under PerSample's transform, as conf/augment/trivial_augment.yaml does, e.g."
        " augment: {_target_: multiclass.datasets.augment.PerSample, transform: {_target_:"
        f" {target}}}}}, or on the command line augment=trivial_augment"
        f" augment.transform._target_={target}"
    )


def test_an_augment_that_changes_the_dtype_or_returns_no_tensor_is_one_line():
    stored = images(4)
    with pytest.raises(UserError, match=r"changed the images' dtype uint8 -> float32"):
        check_augmentation(PerSample(v2.ToDtype(torch.float32, scale=True)), stored)
    with pytest.raises(UserError, match=r"augment \(function\) gave a tuple, not a batch"):
        check_augmentation(lambda batch, seed: (batch, seed), stored)
    with pytest.raises(UserError, match=r"augment \(function\) fails on one image of shape 1x8x8"):
        check_augmentation(lambda batch, seed: batch[5], stored)


def test_the_augment_check_leaves_the_runs_generators_as_they_were():
    def drawing(batch: torch.Tensor, seed: int) -> torch.Tensor:  # from torch's own generator
        return batch.roll(int(torch.randint(8, ())), dims=-1)

    state = torch.get_rng_state()
    check_augmentation(drawing, images(4))
    assert torch.equal(torch.get_rng_state(), state)
