"""``python -m nnunetv2_alc.synthetic`` runs the ``nnUNetv2_alc_synthetic`` command."""

from .cli import main

main()
