"""The .pth start-up hook makes stock nnU-Net find our trainers in a fresh interpreter."""

import os
import subprocess
import sys

from nnunetv2_alc.ext_trainer_path import TRAINER_FOLDER
from nnunetv2_alc.trainer_registry import trainer_module_names

TRAINERS = list(trainer_module_names())  # every nnUNetTrainer*.py of nnunetv2_alc/trainers, stock variant included


def fresh_python(code, **env_overrides):
    env = {k: v for k, v in os.environ.items() if k != "nnUNet_extTrainer"}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, encoding="utf-8",
                          check=True).stdout.strip()


def listed_folders(**env):
    return fresh_python("import os; print(os.environ['nnUNet_extTrainer'])", **env).split(os.pathsep)


def test_fresh_interpreter_lists_our_trainer_folder():
    assert listed_folders().count(TRAINER_FOLDER) == 1


def test_user_folders_are_kept_first_and_ours_added_once(tmp_path):
    mine = str(tmp_path)
    for preset in (mine, os.pathsep.join([mine, TRAINER_FOLDER])):
        folders = listed_folders(nnUNet_extTrainer=preset)
        assert folders[0] == mine and folders.count(TRAINER_FOLDER) == 1


def test_nnunet_finds_every_trainer_by_name():
    code = ("from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name as f\n"
            f"for name in {TRAINERS!r}:\n"
            "    cls = f(name)\n"
            "    assert cls.__name__ == name, (cls, name)\n"
            "print('found', len(" + repr(TRAINERS) + "))")
    assert fresh_python(code).splitlines()[-1] == f"found {len(TRAINERS)}"


def test_train_cli_starts(tmp_path):
    """`nnUNetv2_train -h` starts with our hook installed; the real CLI run is in test_end_to_end."""
    result = subprocess.run(["nnUNetv2_train", "-h"], capture_output=True, encoding="utf-8", cwd=tmp_path)
    assert result.returncode == 0 and "-tr" in result.stdout
