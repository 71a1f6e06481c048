"""Puts this package's trainer folder on ``nnUNet_extTrainer`` so stock nnU-Net finds our trainers.

nnU-Net v2 (>= 2.8) looks for a trainer named by ``-tr`` in its own package first and then in every
folder listed in the environment variable ``nnUNet_extTrainer`` (``os.pathsep``-separated). The wheel
installs ``nnunetv2_alc_ext_trainer.pth`` into site-packages; Python runs its one line at start-up,
which calls :func:`register`. Folders the user already lists are kept, ours is appended once.

By hand (e.g. with ``python -S`` or an interpreter that skips .pth files)::

    export nnUNet_extTrainer="$(python -c 'import nnunetv2_alc.ext_trainer_path as p; print(p.TRAINER_FOLDER)')"
"""

import os

TRAINER_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trainers")
ENV_VAR = "nnUNet_extTrainer"


def register() -> None:
    """Append :data:`TRAINER_FOLDER` to ``nnUNet_extTrainer`` unless it is listed already."""
    listed = [p for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    if any(os.path.abspath(p) == TRAINER_FOLDER for p in listed):
        return
    os.environ[ENV_VAR] = os.pathsep.join(listed + [TRAINER_FOLDER])
