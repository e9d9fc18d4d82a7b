"""The shipped Accelerate config files load with Accelerate's own loader and name only options it knows."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import launch_command_parser

from redheart.training.config import load_config

FOLDER = Path(__file__).resolve().parents[2] / "training" / "accelerate"
EXPECTED = {
    "cpu-gloo.yaml": "MULTI_GPU",  # the torchrun launcher; gloo comes from train.py (see the file's header)
    "ddp.yaml": "MULTI_GPU",
    "fsdp.yaml": "FSDP",
    "deepspeed-zero2.yaml": "DEEPSPEED",
}


def test_every_config_is_tested():
    assert sorted(p.name for p in FOLDER.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_loads_with_accelerates_loader(name):
    path = FOLDER / name
    config = load_config_from_file(str(path))  # refuses unknown top-level keys
    assert isinstance(config, ClusterConfig) and config.distributed_type.value == EXPECTED[name]
    # nested sections are copied onto the launcher's options, where an unknown key would be dropped silently
    options = {action.dest for action in launch_command_parser()._actions}
    for section in (config.fsdp_config, config.deepspeed_config):
        assert set(section) <= options, sorted(set(section) - options)
    header = path.read_text().split("\ncompute_environment")[0]
    assert f"accelerate launch --config_file training/accelerate/{name}" in header
    if name == "cpu-gloo.yaml":
        assert config.use_cpu and config.num_processes == 2
    else:  # the GPU files: the 330m preset, the GPU count on the command line, bf16 as the preset runs it
        assert "training/configs/330m.yaml" in header and "--num_processes" in header
        assert config.num_processes == -1 and config.mixed_precision == "bf16"


def test_deepspeed_and_fsdp_settings_fit_the_330m_preset():
    preset = load_config("330m")
    ds = load_config_from_file(str(FOLDER / "deepspeed-zero2.yaml")).deepspeed_config
    assert ds["zero_stage"] == 2 and float(ds["gradient_clipping"]) == float(preset.train.max_grad_norm)
    assert "gradient_accumulation_steps" not in ds  # the training config's grad_accum decides
    fsdp = load_config_from_file(str(FOLDER / "fsdp.yaml")).fsdp_config
    assert fsdp["fsdp_use_orig_params"]  # two parameter groups built before wrapping
    assert not fsdp["fsdp_activation_checkpointing"] and preset.train.activation_checkpointing
    from redheart.configuration_redheart import RedHeartConfig
    from redheart.modeling_redheart import RedHeartModel

    layers = {type(m).__name__ for m in RedHeartModel(RedHeartConfig.from_preset("tiny")).modules()}
    assert fsdp["fsdp_transformer_layer_cls_to_wrap"] in layers
