import json

import pytest

from nnunetv2_alc.config import ALCConfig, ALCConfigError


def test_defaults_follow_method_md():
    c = ALCConfig()
    defaults = (c.num_passes, c.k, c.alpha, c.beta, c.lambda_max, c.rampup_fraction, c.ema_decay)
    assert defaults == (8, 0.5, 3.0, 2.0, 0.1, 0.75, 0.99)
    assert (c.noise_std, c.noise_clip) == (0.1, 0.2)
    assert (c.weight_ce, c.weight_dice) == (1.0, 1.0)  # nnU-Net's own CE + Dice scale
    # half the batch HQ (ours, docs/method.md "Data and batches"); the paper's 4 of 24 is one setting away
    assert c.hq_share == 0.5 and c.batch_split(12) == (6, 6) and c.batch_split(5) == (2, 3)
    assert c.batch_split(2) == (1, 1)
    paper = ALCConfig.from_sources({"ALC_HQ_SHARE": "1/6"})  # a fraction: exactly what an older checkpoint saved
    assert paper.batch_split(24) == (4, 20) and paper.method_differences(ALCConfig(hq_share=1 / 6).as_dict()) == []
    assert ALCConfig.from_sources({"ALC_HQ_SHARE": "0.1667"}).batch_split(12) == (2, 10)


@pytest.mark.parametrize("value", ["1/0", "1/x", "1/2/3"])
def test_a_bad_fraction_names_the_variable(value):
    with pytest.raises(ALCConfigError, match=f"ALC_HQ_SHARE='{value}' is not a valid float"):
        ALCConfig.from_sources({"ALC_HQ_SHARE": value})


def test_method_differences_name_each_setting_and_ignore_run_settings():
    saved = ALCConfig().as_dict()
    now = ALCConfig(k=0.25, num_epochs=3, seed=7, teacher_chunk=4, final_validation=False)
    assert now.method_differences(saved) == ["k: 0.5 -> 0.25"]
    del saved["weight_ce"]
    assert ALCConfig().method_differences(saved) == ["weight_ce: '<not saved>' -> 1.0"]


def test_environment_overrides_file_which_overrides_variant_defaults(tmp_path):
    config_file = tmp_path / "alc.json"
    config_file.write_text(json.dumps({"k": 0.25, "alpha": 1}))
    env = {"ALC_CONFIG": str(config_file), "ALC_NUM_PASSES": "4", "ALC_ALPHA": "2.5", "ALC_SELECTION_MODE": "batch"}
    c = ALCConfig.from_sources(env, num_passes=1, beta=1.0)
    assert (c.num_passes, c.k, c.alpha, c.beta, c.selection_mode) == (4, 0.25, 2.5, 1.0, "batch")


@pytest.mark.parametrize("env, fragment", [
    ({"ALC_K": "0"}, "k=0.0"),
    ({"ALC_K": "1.5"}, "k=1.5"),
    ({"ALC_NUM_PASSES": "two"}, "ALC_NUM_PASSES='two' is not a valid int"),
    ({"ALC_NUM_PASSES": "2.5"}, "not a valid int"),
    ({"ALC_DROPOUT_PLACEMENT": "middle"}, "dropout_placement='middle'"),
    ({"ALC_SELECTION_MODE": "best"}, "selection_mode='best'"),
    ({"ALC_EMA_DECAY": "1"}, "ema_decay=1.0"),
    ({"ALC_WEIGHT_DICE": "-1"}, "weight_dice=-1.0"),
])
def test_bad_values_are_named(env, fragment):
    with pytest.raises(ALCConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        ALCConfig.from_sources(env)


def test_bad_config_file_is_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ALCConfigError, match="bad.json"):
        ALCConfig.from_sources({"ALC_CONFIG": str(bad)})
    bad.write_text(json.dumps({"kappa": 1}))
    with pytest.raises(ALCConfigError, match="kappa"):
        ALCConfig.from_sources({"ALC_CONFIG": str(bad)})


@pytest.mark.parametrize("share, batch, expected", [(0.2, 2, (1, 1)), (0.2, 24, (5, 19)), (4 / 24, 24, (4, 20)),
                                                     (0.9, 2, (1, 1)), (0.5, 5, (2, 3)), (1.0, 2, (2, 0))])
def test_batch_split(share, batch, expected):
    assert ALCConfig(hq_share=share).batch_split(batch) == expected


def test_batch_of_one_is_refused():
    with pytest.raises(ALCConfigError, match="batch size of at least 2"):
        ALCConfig().batch_split(1)


def test_selection_mode_auto_uses_batch_rank_from_four_lq_samples():
    c = ALCConfig()
    assert not c.uses_batch_selection(1) and not c.uses_batch_selection(3) and c.uses_batch_selection(4)
    assert ALCConfig(selection_mode="window").uses_batch_selection(20) is False
    assert ALCConfig(selection_mode="batch").uses_batch_selection(1) is True


@pytest.mark.parametrize("text, expected", [("0", False), ("false", False), ("No", False), ("1", True), ("true", True)])
def test_final_validation_parses_booleans(text, expected):
    assert ALCConfig.from_sources({"ALC_FINAL_VALIDATION": text}).final_validation is expected


def test_bad_boolean_and_seed_are_named():
    with pytest.raises(ALCConfigError, match="ALC_FINAL_VALIDATION='maybe' is not a valid bool"):
        ALCConfig.from_sources({"ALC_FINAL_VALIDATION": "maybe"})
    with pytest.raises(ALCConfigError, match="seed=-2"):
        ALCConfig.from_sources({"ALC_SEED": "-2"})
    assert ALCConfig.from_sources({"ALC_SEED": "7"}).seed == 7 and ALCConfig().seed == -1
