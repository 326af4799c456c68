"""Fake checkpoints in the exact key layouts of the public ResNet releases (docs/checkpoints.md cites each writer).

Every builder takes a full torchvision ResNet state dict (``fc`` included, every tensor random so a
wrong mapping is caught by ``torch.equal``) and returns the object the release's code saves: its
nesting, prefixes, heads, other networks, optimizer and metadata entries. Heads are small but
shape-consistent. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
import types
from typing import Any, Callable, Mapping

import pytest
import torch
import torchvision

State = dict[str, torch.Tensor]


def random_torchvision_state(arch: str = "resnet18", seed: int = 0) -> State:
    """``torchvision.models.<arch>().state_dict()`` (fc included) with every tensor randomised."""
    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = torchvision.models.__dict__[arch]().state_dict()
    return {key: (torch.randn(value.shape, generator=generator) if value.is_floating_point()
                  else torch.randint(0, 10_000, value.shape, generator=generator, dtype=value.dtype))
            for key, value in shapes.items()}


def trunk(state: Mapping[str, torch.Tensor]) -> State:
    return {key: value for key, value in state.items() if not key.startswith("fc.")}


def prefixed(state: Mapping[str, torch.Tensor], prefix: str) -> State:
    return {prefix + key: value for key, value in state.items()}


def linear(prefix: str, n_in: int, n_out: int, bias: bool = True) -> State:
    return {f"{prefix}weight": torch.randn(n_out, n_in), **({f"{prefix}bias": torch.zeros(n_out)} if bias else {})}


def batchnorm(prefix: str, n: int, affine: bool = True) -> State:
    out = {f"{prefix}weight": torch.ones(n), f"{prefix}bias": torch.zeros(n)} if affine else {}
    return {**out, f"{prefix}running_mean": torch.zeros(n), f"{prefix}running_var": torch.ones(n),
            f"{prefix}num_batches_tracked": torch.tensor(7)}


def optimizer(**group: Any) -> dict[str, Any]:
    return {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0], **group}]}


def _exclude_bias_and_norm(p: torch.Tensor) -> bool:
    return p.ndim == 1


# VICReg's LARS filter, a function defined in main_vicreg.py: its full checkpoints pickle a reference to it.
_main_vicreg = types.ModuleType("main_vicreg")
_exclude_bias_and_norm.__module__, _exclude_bias_and_norm.__qualname__ = "main_vicreg", "exclude_bias_and_norm"
_main_vicreg.exclude_bias_and_norm = exclude_bias_and_norm = _exclude_bias_and_norm
sys.modules.setdefault("main_vicreg", _main_vicreg)


def lightning(state_dict: State) -> dict[str, Any]:
    """PyTorch Lightning ``Trainer.save_checkpoint``."""
    return {"epoch": 99, "global_step": 1000, "pytorch-lightning_version": "2.0.0", "state_dict": state_dict,
            "loops": {}, "callbacks": {}, "optimizer_states": [optimizer()], "lr_schedulers": [{"last_epoch": 99}]}


def sequential_names(state: Mapping[str, torch.Tensor]) -> State:
    """torchvision names -> ``nn.Sequential(*list(resnet.children())[:-1])`` child indices."""
    index = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}
    return {f"{index[key.split('.', 1)[0]]}.{key.split('.', 1)[1]}": value for key, value in trunk(state).items()}


def moco(q: State, k: State, mlp: bool) -> dict[str, Any]:
    """moco main_moco.py save_checkpoint; builder.py MoCo (queue buffers first, fc = projection)."""
    dim = q["fc.weight"].shape[1]
    fc = (lambda p: {**linear(f"{p}fc.0.", dim, dim), **linear(f"{p}fc.2.", dim, 16)}) if mlp \
        else (lambda p: linear(f"{p}fc.", dim, 16))
    state = {"module.queue": torch.randn(16, 8), "module.queue_ptr": torch.zeros(1, dtype=torch.long),
             **prefixed(trunk(q), "module.encoder_q."), **fc("module.encoder_q."),
             **prefixed(trunk(k), "module.encoder_k."), **fc("module.encoder_k.")}
    return {"epoch": 200, "arch": "resnet50", "state_dict": state, "optimizer": optimizer()}


def moco_v3(base: State, momentum: State) -> dict[str, Any]:
    """moco-v3 main_moco.py save_checkpoint; MoCo_ResNet: fc = 2-layer projector, predictor."""
    dim = base["fc.weight"].shape[1]
    projector = lambda p: {**linear(f"{p}0.", dim, 32, bias=False), **batchnorm(f"{p}1.", 32),  # noqa: E731
                           **linear(f"{p}3.", 32, 16, bias=False), **batchnorm(f"{p}4.", 16, affine=False)}
    state = {**prefixed(trunk(base), "module.base_encoder."), **projector("module.base_encoder.fc."),
             **prefixed(trunk(momentum), "module.momentum_encoder."), **projector("module.momentum_encoder.fc."),
             **linear("module.predictor.0.", 16, 32, bias=False), **batchnorm("module.predictor.1.", 32),
             **linear("module.predictor.3.", 32, 16, bias=False)}
    return {"epoch": 300, "arch": "resnet50", "state_dict": state, "optimizer": optimizer(),
            "scaler": {"scale": 65536.0, "growth_factor": 2.0}}


def swav(state: State, deepcluster: bool = False) -> State:
    """swav *_pretrain.pth.tar: bare DDP state dict, projection head, prototypes (MultiPrototypes for DC-v2)."""
    dim = state["fc.weight"].shape[1]
    if deepcluster:
        prototypes = {key: value for i in range(3)
                      for key, value in linear(f"module.prototypes.prototypes{i}.", 16, 10, bias=False).items()}
    else:
        prototypes = linear("module.prototypes.", 16, 10, bias=False)
    return {**prefixed(trunk(state), "module."), **linear("module.projection_head.0.", dim, 32),
            **batchnorm("module.projection_head.1.", 32), **linear("module.projection_head.3.", 32, 16), **prototypes}


def dino_network(state: State, prefix: str) -> State:
    """utils.MultiCropWrapper(backbone with fc=Identity, DINOHead)."""
    dim = state["fc.weight"].shape[1]
    return {**prefixed(trunk(state), f"{prefix}backbone."), **linear(f"{prefix}head.mlp.0.", dim, 32),
            **linear(f"{prefix}head.mlp.2.", 32, 32), **linear(f"{prefix}head.mlp.4.", 32, 8),
            f"{prefix}head.last_layer.weight_g": torch.ones(24, 1),
            f"{prefix}head.last_layer.weight_v": torch.randn(24, 8)}


def dino_full(teacher: State, student: State, teacher_prefix: str = "module.") -> dict[str, Any]:
    """dino main_dino.py save_dict (ResNet: teacher DDP-wrapped too; ViT runs save it as ``backbone.``)."""
    return {"student": dino_network(student, "module."), "teacher": dino_network(teacher, teacher_prefix),
            "optimizer": optimizer(), "epoch": 100, "args": argparse.Namespace(arch="resnet50", out_dim=24),
            "dino_loss": {"center": torch.zeros(1, 24)}}


def mlp_projector(prefix: str, dim: int, bias: bool) -> State:
    """VICReg/Barlow Twins projector: [Linear BN ReLU] x2, Linear (indices 0,1,3,4,6)."""
    return {**linear(f"{prefix}0.", dim, 32, bias), **batchnorm(f"{prefix}1.", 32),
            **linear(f"{prefix}3.", 32, 32, bias), **batchnorm(f"{prefix}4.", 32),
            **linear(f"{prefix}6.", 32, 16, bias=False)}


def vicreg_full(state: State, vicregl: bool = False) -> dict[str, Any]:
    """vicreg main_vicreg.py / VICRegL utils.checkpoint: dict(epoch, model (DDP), optimizer with LARS filters)."""
    dim = state["fc.weight"].shape[1]
    model = {**prefixed(trunk(state), "module.backbone."), **mlp_projector("module.projector.", dim, True)}
    if vicregl:
        model |= {**mlp_projector("module.maps_projector.", dim, True), **linear("module.classifier.", dim, 5)}
    return {"epoch": 1000, "model": model, "optimizer": optimizer(weight_decay_filter=exclude_bias_and_norm,
                                                                  lars_adaptation_filter=exclude_bias_and_norm)}


def barlowtwins_full(state: State) -> dict[str, Any]:
    """barlowtwins main.py: dict(epoch, model (DDP), optimizer); bias-free projector, affine-free bn."""
    dim = state["fc.weight"].shape[1]
    model = {**prefixed(trunk(state), "module.backbone."), **mlp_projector("module.projector.", dim, False),
             **batchnorm("module.bn.", 16, affine=False)}
    return {"epoch": 1000, "model": model, "optimizer": optimizer(weight_decay_filter=True)}


def vissl_full(state: State) -> dict[str, Any]:
    """vissl log_hooks checkpoint_content; ClassyVision get_classy_state; trunk ``_feature_blocks.``."""
    dim = state["fc.weight"].shape[1]
    heads = {**linear("0.clf.0.", dim, dim), **linear("1.clf.0.", dim, 16)}
    classy = {"train": True, "base_model": {"model": {"trunk": prefixed(trunk(state), "_feature_blocks."),
                                                      "heads": heads}, "meta": {}},
              "meters": [], "optimizer": {"optim": optimizer()}, "phase_idx": 199, "num_updates": 5, "losses": []}
    return {"phase_idx": 199, "iteration": 5, "loss": {}, "iteration_num": 5, "train_phase_idx": 99,
            "classy_state_dict": classy, "type": "consolidated"}


def solo_learn(backbone: State, momentum: State) -> dict[str, Any]:
    """solo-learn MoCo v2+ Lightning checkpoint: backbone, online classifier, momentum backbone, queue."""
    dim = backbone["fc.weight"].shape[1]
    return lightning({"queue": torch.randn(2, 16, 8), "queue_ptr": torch.zeros(1, dtype=torch.long),
                      **prefixed(trunk(backbone), "backbone."), **linear("classifier.", dim, 5),
                      **prefixed(trunk(momentum), "momentum_backbone."), **linear("projector.0.", dim, 32),
                      **linear("momentum_projector.0.", dim, 32)})


def lightly_lightning(state: State) -> dict[str, Any]:
    """lightly tutorial LightningModule: backbone = Sequential(children[:-1]), SimCLR projection head."""
    dim = state["fc.weight"].shape[1]
    head = {**linear("projection_head.layers.0.", dim, 32, bias=False), **batchnorm("projection_head.layers.1.", 32),
            **linear("projection_head.layers.3.", 32, 16, bias=False)}
    return lightning({**prefixed(sequential_names(state), "backbone."), **head})


def lightly_benchmark(state: State) -> dict[str, Any]:
    """lightly benchmarks/imagenet/resnet50: backbone = torchvision resnet50 with fc=Identity, online classifier."""
    dim = state["fc.weight"].shape[1]
    return lightning({**prefixed(trunk(state), "backbone."), **linear("projection_head.layers.0.", dim, 32),
                      **linear("online_classifier.classification_head.", dim, 5)})


def mm_meta() -> dict[str, Any]:
    return {"epoch": 200, "iter": 1000, "cfg": "model = dict(type='MoCo')", "seed": 0, "mmengine_version": "0.1.0"}


def mmselfsup_mocov2(state: State, momentum: State) -> dict[str, Any]:
    """mmengine Runner.save_checkpoint after publish_model.py: {meta, state_dict, message_hub, ...}."""
    dim = state["fc.weight"].shape[1]
    sd = {"queue": torch.randn(16, 8), "queue_ptr": torch.zeros(1, dtype=torch.long),
          **prefixed(trunk(state), "backbone."), **linear("neck.mlp.0.", dim, 32), **linear("neck.mlp.2.", 32, 16),
          "encoder_k.steps": torch.tensor(1000), **prefixed(trunk(momentum), "encoder_k.module.0."),
          **linear("encoder_k.module.1.mlp.0.", dim, 32)}
    return {"meta": mm_meta(), "state_dict": sd, "message_hub": {"runtime_info": {"epoch": 200}},
            "param_schedulers": [{"last_step": 200}]}


def mmpretrain_barlowtwins(state: State) -> dict[str, Any]:
    """mmpretrain publish_model.py output: {meta, state_dict}; NonLinearNeck, head.bn."""
    dim = state["fc.weight"].shape[1]
    sd = {**prefixed(trunk(state), "backbone."), **linear("neck.fc0.", dim, 32, bias=False),
          **batchnorm("neck.bn0.", 32), **batchnorm("head.bn.", 16, affine=False)}
    return {"meta": {**mm_meta(), "mmpretrain_version": "1.0.0"}, "state_dict": sd}


# release -> (builder of the file from the evaluated and a second network's states, expected format family)
RELEASES: dict[str, tuple[Callable[[State, State], Any], str]] = {
    "moco_v1": (lambda s, o: moco(s, o, mlp=False), "moco"),
    "moco_v2": (lambda s, o: moco(s, o, mlp=True), "moco"),
    "moco_v2_cleaned": (lambda s, o: {"state_dict": {k: v for k, v in moco(s, o, True)["state_dict"].items()
                                                     if k.startswith("module.encoder_q.")}}, "moco"),
    "moco_v3": (moco_v3, "moco-v3"),
    "swav": (lambda s, o: swav(s), "ddp-torchvision"),
    "swav_training": (lambda s, o: {"epoch": 800, "state_dict": swav(s), "optimizer": optimizer()},
                      "ddp-torchvision"),
    "deepcluster_v2": (lambda s, o: swav(s, deepcluster=True), "ddp-torchvision"),
    "dino_backbone": (lambda s, o: trunk(s), "torchvision"),
    "dino_full": (dino_full, "dino"),
    "dino_full_vit_style_teacher": (lambda s, o: dino_full(s, o, teacher_prefix=""), "dino"),
    "vicreg_backbone": (lambda s, o: trunk(s), "torchvision"),
    "vicreg_full": (lambda s, o: vicreg_full(s), "ddp-backbone"),
    "vicregl_full": (lambda s, o: vicreg_full(s, vicregl=True), "ddp-backbone"),
    "barlowtwins_hub": (lambda s, o: trunk(s), "torchvision"),
    "barlowtwins_full": (lambda s, o: barlowtwins_full(s), "ddp-backbone"),
    "vissl_full": (lambda s, o: vissl_full(s), "vissl"),
    "vissl_converted": (lambda s, o: {"model_state_dict": prefixed(trunk(s), "_feature_blocks.")}, "vissl"),
    "solo_learn": (solo_learn, "backbone-prefixed"),
    "lightly_lightning": (lambda s, o: lightly_lightning(s), "lightly-sequential"),
    "lightly_tutorial_export": (lambda s, o: {"resnet18_parameters": sequential_names(s)}, "lightly-sequential"),
    "lightly_benchmark": (lambda s, o: lightly_benchmark(s), "backbone-prefixed"),
    "mmselfsup_mocov2": (mmselfsup_mocov2, "backbone-prefixed"),
    "mmpretrain_barlowtwins": (lambda s, o: mmpretrain_barlowtwins(s), "backbone-prefixed"),
    "mmselfsup_extracted": (lambda s, o: {"state_dict": trunk(s), "author": "MMSelfSup"}, "torchvision"),
    "timm_resnet": (lambda s, o: dict(s), "torchvision"),
    "torchvision": (lambda s, o: dict(s), "torchvision"),
    "torchvision_legacy": (lambda s, o: {k: v for k, v in s.items() if not k.endswith("num_batches_tracked")},
                           "torchvision"),
    "pretrain_checkpoint": (lambda s, o: {"format": "barlowtwins-pretrain-checkpoint", "epoch": 3,
                                          "model": {**prefixed(trunk(s), "backbone."),
                                                    **mlp_projector("projector.", 512, False)}},
                            "pretrain-checkpoint"),
}


@pytest.fixture(scope="session")
def release_states() -> tuple[State, State]:
    """The evaluated network's and the other network's torchvision states (resnet18, distinct tensors)."""
    return random_torchvision_state("resnet18", seed=0), random_torchvision_state("resnet18", seed=1)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking ``public_release`` runs once per public release layout."""
    if "public_release" in metafunc.fixturenames:
        metafunc.parametrize("public_release", list(RELEASES))


@pytest.fixture(scope="session")
def build_release(release_states) -> Callable[[str], tuple[Any, str]]:
    """``build_release(name)`` -> (the checkpoint object of release ``name``, its expected format family)."""
    def build(name: str) -> tuple[Any, str]:
        builder, family = RELEASES[name]
        return builder(*release_states), family
    return build


@pytest.fixture(scope="session")
def release_families() -> dict[str, str]:
    """Release name -> the format family that must detect it."""
    return {name: family for name, (_, family) in RELEASES.items()}
