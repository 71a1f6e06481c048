"""Noisy-label generation for ALC experiments: ball morphology, HQ/LQ tagging and label corruption.

* :func:`perturb_mask` (:mod:`noise_generation.morphology`): exact ball dilation/erosion.
* :mod:`noise_generation.tag`: ``nnUNetv2_alc_tag``, tag training cases HQ/LQ.
* :mod:`noise_generation.make_noisy`: ``nnUNetv2_alc_make_noisy``, corrupt the LQ labels.
"""

from noise_generation.morphology import perturb_mask

__all__ = ["perturb_mask"]
