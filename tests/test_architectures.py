"""Standard architectures by name (torchvision, timm), fine-tuning from a weights file, a frozen
backbone and a backbone lr: on 8x8 digits, a few steps each."""

import importlib.util

import pytest
import torch
import torchvision

from multiclass.config import compose_config
from multiclass.errors import UserError, one_line
from multiclass.heads import build_loss
from multiclass.models import build_classifier
from multiclass.models.finetune import (
    Finetuning,
    finetuning,
    from_checkpoint,
    head_module,
    prepare,
)
from multiclass.records.checkpoint import load_classifier

FEW = ["dataset.limit=200", "trainer.epochs=1", "trainer.batch_size=50"]
TIMM = importlib.util.find_spec("timm") is not None
SAFETENSORS = importlib.util.find_spec("safetensors") is not None


def built(*overrides: str, input_shape=(1, 8, 8), classes: int = 10) -> torch.nn.Module:
    cfg = compose_config(*overrides)
    _, head = build_loss(cfg.loss, classes)
    return build_classifier(cfg.model, input_shape, head)[0]


def error_of(*overrides: str) -> str:
    """The one line a run would print for building this model."""
    with pytest.raises(Exception) as caught:
        built(*overrides)
    return one_line(caught.value)


def test_a_torchvision_model_by_name_takes_the_datas_channels_and_classes(train, tmp_path):
    body = built("model=torchvision", "model.name=resnet18", classes=3)
    assert body.conv1.in_channels == 1 and body.fc.out_features == 3
    three = ["model=torchvision", "model.name=resnet18", "dataset.classes=[0,1,2]"]
    outcome = train(*three, *FEW, run_dir=tmp_path / "resnet")
    assert outcome.status == "completed" and outcome.summary["num_classes"] == 3
    model, _, _ = load_classifier(tmp_path / "resnet" / "model.pt")  # rebuilt, no weights file
    assert model(torch.zeros(5, 1, 8, 8)).shape == (5, 3)


def test_a_name_torchvision_lacks_is_one_line_with_close_names():
    assert error_of("model=torchvision", "model.name=resnet19") == (
        "model.name: torchvision has no model 'resnet19'; close names: resnet18, resnet152,"
        " resnet101, resnet50, resnet34"
    )


def test_an_argument_the_builder_refuses_is_one_line():
    error = error_of("model=torchvision", "model.name=resnet18", "+model.options.bogus=1")
    assert error.startswith("model.name=resnet18: cannot build it: ") and "bogus" in error


@pytest.mark.skipif(not TIMM, reason="timm is not installed: pip install -e '.[timm]'")
def test_a_timm_model_by_name_takes_the_datas_channels_and_classes(train):
    body = built("model=timm", "model.name=resnet10t", classes=4)
    assert body.get_classifier().out_features == 4
    assert next(m for m in body.modules() if isinstance(m, torch.nn.Conv2d)).in_channels == 1
    error = error_of("model=timm", "model.name=resnet10x")
    assert error.startswith("model.name: timm has no model 'resnet10x'; close names: resnet10t")
    assert train("model=timm", "model.name=resnet10t", *FEW).status == "completed"


def test_a_torchvision_weights_file_loads_all_but_the_head_and_sums_the_stem(tmp_path):
    imagenet = torchvision.models.resnet18()  # as torchvision's file holds it: RGB, 1000 classes
    path = tmp_path / "resnet18.pth"
    torch.save(imagenet.state_dict(), path)
    body = built("model=torchvision", f"finetune.weights={path}")
    prepare(body, Finetuning(weights=str(path)))
    saved, loaded = imagenet.state_dict(), body.state_dict()
    assert torch.equal(loaded["conv1.weight"], saved["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(loaded["layer4.1.bn2.running_var"], saved["layer4.1.bn2.running_var"])
    assert all(torch.equal(loaded[k], saved[k]) for k in saved if k.startswith("layer"))
    assert loaded["fc.weight"].shape == (10, 512)  # the head is the data's, not the file's


def test_a_weights_file_for_another_model_names_the_layers_that_differ(tmp_path):
    state = torchvision.models.resnet18().state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(8, 64, 3, 3)
    torch.save(state, tmp_path / "odd.pth")
    body = built("model=torchvision")
    with pytest.raises(UserError, match=r"shapes differ: layer1\.0\.conv1\.weight \(8, 64, 3, 3\)"):
        prepare(body, Finetuning(weights=str(tmp_path / "odd.pth")))
    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "resnet34.pth")
    with pytest.raises(UserError, match=r"layers this model lacks: layer1\.2\.conv1\.weight"):
        prepare(body, Finetuning(weights=str(tmp_path / "resnet34.pth")))
    (tmp_path / "junk.pth").write_text("not torch")
    with pytest.raises(UserError, match=r"junk\.pth: cannot be read"):
        prepare(body, Finetuning(weights=str(tmp_path / "junk.pth")))


def test_a_runs_model_pt_fine_tunes_a_frozen_backbone_that_stays_bit_identical(train, tmp_path):
    cnn = ["model=cnn", "model.batch_norm=true", "model.dropout=0.2", "model.hidden=[16]"]
    source = train(*cnn, *FEW, run_dir=tmp_path / "source")
    assert source.status == "completed"
    weights = tmp_path / "source" / "model.pt"
    frozen = ["dataset.classes=[3,5]", f"finetune.weights={weights}", "finetune.freeze=backbone"]
    tuned = train(*cnn, *FEW, *frozen, run_dir=tmp_path / "tuned")
    assert tuned.status == "completed" and tuned.summary["num_classes"] == 2
    before, _, _ = load_classifier(weights)
    after, _, _ = load_classifier(tmp_path / "tuned" / "model.pt")
    old, new = before.state_dict(), after.state_dict()
    head = "0.12."  # conv-BN-ReLU-pool twice, Flatten, Linear-ReLU-Dropout, then the head
    assert new[f"{head}weight"].shape == (2, 16)
    backbone = [key for key in new if not key.startswith(head)]
    assert len(backbone) == 16  # two convs and their batch norms (running statistics too), a Linear
    assert all(torch.equal(new[key], old[key]) for key in backbone)


def test_a_backbone_lr_is_a_fraction_of_the_heads_under_a_schedule_too(train, tmp_path):
    body = built("model=mlp")
    trainable = prepare(body, Finetuning(backbone_lr=0.1))
    assert trainable.groups[0]["params"] == list(head_module(body).parameters())
    assert trainable.lr_factors == (1.0, 0.1)
    onecycle = ["scheduler=onecycle", "trainer.epochs=3"]  # one step is too short a cycle
    outcome = train("finetune.backbone_lr=0.1", *FEW, *onecycle, run_dir=tmp_path / "r")
    assert outcome.status == "completed"
    saved = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    max_lrs = [group["max_lr"] for group in saved["optimizer"]["param_groups"]]
    assert max_lrs == pytest.approx([1e-3, 1e-4])


@pytest.mark.skipif(not SAFETENSORS, reason="safetensors is not installed: the timm extra")
def test_a_safetensors_file_loads_as_a_torch_file_does(tmp_path):
    from safetensors.torch import save_file

    source = built("model=cnn")
    save_file(source.state_dict(), tmp_path / "model.safetensors")
    body = built("model=cnn")  # other random weights: the generator has moved on
    prepare(body, Finetuning(weights=str(tmp_path / "model.safetensors")))
    assert torch.equal(body[0].weight, source[0].weight)  # the first conv, not the head


@pytest.mark.skipif(not TIMM, reason="timm is not installed: pip install -e '.[timm]'")
def test_a_timm_weights_file_loads_all_but_the_head_and_sums_the_deep_stem(tmp_path):
    import timm

    imagenet = timm.create_model("resnet10t")  # as timm's file holds it: RGB, 1000 classes
    torch.save(imagenet.state_dict(), tmp_path / "resnet10t.pth")
    body = built("model=timm", "model.name=resnet10t")
    prepare(body, Finetuning(weights=str(tmp_path / "resnet10t.pth")))
    saved, loaded = imagenet.state_dict(), body.state_dict()
    stem = "conv1.0.weight"  # resnet10t's deep stem: its first of three convolutions
    assert torch.equal(loaded[stem], saved[stem].sum(dim=1, keepdim=True))
    assert all(torch.equal(loaded[k], saved[k]) for k in saved if k.startswith("layer"))
    assert loaded["fc.weight"].shape == (10, 512)


def test_a_rebuild_from_a_checkpoint_reads_no_weights_file_and_downloads_nothing():
    """What only the first build used: finetune.weights, timm's `pretrained`, torchvision's
    `weights` (a resume's last.pt or a model.pt holds every weight)."""
    options = ["+model.options.pretrained=true", "+model.options.drop_rate=0.2"]
    cfg = compose_config(
        "model=timm", "finetune.weights=W.pt", "finetune.freeze=backbone", *options
    )
    rebuilt = from_checkpoint(cfg.model)
    assert finetuning(cfg, restoring=True) == Finetuning(weights=None, freeze="backbone")
    assert dict(rebuilt.options) == {"drop_rate": 0.2}
    assert cfg.finetune.weights == "W.pt" and cfg.model.options.pretrained  # the config as it was
    torchvision_cfg = compose_config("model=torchvision", "+model.options.weights=DEFAULT").model
    assert dict(from_checkpoint(torchvision_cfg).options) == {}


def test_a_whole_pickled_model_as_weights_is_one_line_that_says_to_save_its_state_dict(
    train, tmp_path
):
    path = tmp_path / "whole.pt"
    torch.save(built("model=mlp"), path)  # the module itself, not its state_dict()
    outcome = train(f"finetune.weights={path}", *FEW, run_dir=tmp_path / "run")
    assert outcome.status == "failed"
    assert outcome.summary["error"] == (
        f"finetune.weights {path}: holds a whole model, saved with torch.save(model)"
        " (torch.nn.modules.container.Sequential), not a state dict: save the weights alone,"
        " torch.save(model.state_dict(), PATH)"
    )
    assert "\x1b" not in (tmp_path / "run" / "summary.json").read_text()


def test_a_run_directory_or_its_last_pt_as_weights_gives_the_runs_weights(train, tmp_path):
    run_dir = tmp_path / "source"
    train(*FEW, run_dir=run_dir)  # test_on=last: model.pt holds last.pt's weights
    trained, _, _ = load_classifier(run_dir / "model.pt")
    for given in (run_dir, run_dir / "last.pt"):
        body = built("seed=1")  # other initial weights
        prepare(body, Finetuning(weights=str(given)))
        expected = {k.removeprefix("0."): v for k, v in trained.state_dict().items()}
        backbone = ["1.weight", "1.bias", "3.weight", "3.bias"]  # Flatten, Linear-ReLU twice
        assert all(torch.equal(body.state_dict()[k], expected[k]) for k in backbone)
    (run_dir / "model.pt").unlink()
    (run_dir / "last.pt").unlink()
    with pytest.raises(UserError) as caught:
        prepare(built(), Finetuning(weights=str(run_dir)))
    assert str(caught.value) == (
        f"finetune.weights {run_dir}: a directory with no model.pt in it: give a weights file (a"
        " run's model.pt, a .pth or .safetensors file)"
    )


def test_a_frozen_backbones_dropout_is_off_while_the_head_trains(train, tmp_path):
    """With the backbone in eval mode, its dropout rate cannot change what the head learns."""
    path = tmp_path / "backbone.pt"
    torch.save(built("model.dropout=0.5").state_dict(), path)
    frozen = [f"finetune.weights={path}", "finetune.freeze=backbone", *FEW]
    digests = {
        rate: train(f"model.dropout={rate}", *frozen).summary["weights_sha256"]
        for rate in (0.5, 0.9)
    }
    assert digests[0.5] == digests[0.9]


def test_a_stem_for_more_channels_is_repeated_and_scaled_to_keep_its_output_size(tmp_path):
    imagenet = torchvision.models.resnet18()  # a 3-channel stem
    path = tmp_path / "resnet18.pth"
    torch.save(imagenet.state_dict(), path)
    body = built("model=torchvision", input_shape=(2, 8, 8))
    prepare(body, Finetuning(weights=str(path)))
    stem = imagenet.state_dict()["conv1.weight"]
    assert torch.allclose(body.state_dict()["conv1.weight"], stem[:, :2] * 3 / 2)
    wide = built("model=torchvision", input_shape=(6, 8, 8))
    prepare(wide, Finetuning(weights=str(path)))
    assert torch.allclose(wide.state_dict()["conv1.weight"], torch.cat([stem, stem], 1) / 2)
