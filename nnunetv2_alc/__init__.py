"""Adaptive Label Correction (ALC) for nnU-Net v2.

Kept free of heavy imports: the start-up hook in ``ext_trainer_path`` imports this package in
every Python process (see ``nnunetv2_alc_ext_trainer.pth``).
"""

__version__ = "0.1.0"
