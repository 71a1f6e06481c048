"""The teacher's m stochastic passes over a whole raw case, by nnU-Net's sliding-window inference (Eq. 3).

Choice (documented in docs/demo_and_report.md): the case is preprocessed once with the plans'
preprocessor, then nnU-Net's sliding window runs ``m`` times over it. The predictor's network gets the
training's dropout (:func:`nnunetv2_alc.dropout.add_dropout`, placement and p saved in the checkpoint) and is
wrapped by :class:`StochasticPass`, so every window forward adds fresh input noise
``xi ~ clamp(N(0, std^2), -clip, clip)`` and draws fresh dropout masks, exactly one teacher pass of
training per window. Windows overlap and nnU-Net blends their logits with its Gaussian weights, so a
pass over a whole case is the Gaussian-weighted blend of independent window passes. Each pass is then
brought back to the original image geometry as nnU-Net exports probabilities (resampling of the logits,
softmax, reverting the crop and transpose), giving ``Psi_j`` per pass.
"""

from __future__ import annotations

import numpy as np
import torch
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from torch import nn

from nnunetv2_alc.config import ALCConfig
from nnunetv2_alc.dropout import add_dropout, enable_dropout_only, has_dropout
from nnunetv2_alc.teacher import teacher_noise, unwrap_model


class StochasticPass(nn.Module):
    """A network whose every forward is one stochastic teacher pass: ``f(x + xi)`` with dropout active (Eq. 3)."""

    def __init__(self, network: nn.Module, noise_std: float, noise_clip: float):
        super().__init__()
        self.network = network
        self.noise_std = noise_std
        self.noise_clip = noise_clip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(teacher_noise(x, self.noise_std, self.noise_clip))

    def train(self, mode: bool = True) -> "StochasticPass":
        """Dropout stays on in either mode: nnU-Net's sliding window calls ``.eval()`` before every run."""
        super().train(mode)
        enable_dropout_only(self.network)
        return self


def make_stochastic(predictor: nnUNetPredictor, settings: ALCConfig) -> bool:
    """Give the predictor's network the dropout of ``settings``, then wrap it in :class:`StochasticPass` with their
    input noise. Returns whether the network has dropout (else the passes differ by their input noise only)."""
    network = unwrap_model(predictor.network)  # nnU-Net compiles it lazily (nnUNet_compile): hooks come first
    add_dropout(network, settings.dropout_p, settings.dropout_placement)
    predictor.network = StochasticPass(predictor.network, settings.noise_std, settings.noise_clip)
    return has_dropout(network)


def pass_probabilities(predictor: nnUNetPredictor, image_files: list[str], num_passes: int) -> np.ndarray:
    """``Psi_j`` for j = 1..m of one raw case in its original geometry: float32 ``(m, C, *spatial)``.

    ``predictor`` must have been made stochastic with :func:`make_stochastic`. Memory: the result holds
    ``m * C`` float32 copies of the image grid.
    """
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    data, _, properties = preprocessor.run_case(image_files, None, predictor.plans_manager,
                                                predictor.configuration_manager, predictor.dataset_json)
    data = torch.from_numpy(data).to(torch.float32)
    probs = None
    for j in range(num_passes):
        logits = predictor.predict_sliding_window_return_logits(data).to("cpu", torch.float32)
        _, probabilities = convert_predicted_logits_to_segmentation_with_correct_shape(
            logits, predictor.plans_manager, predictor.configuration_manager, predictor.label_manager, properties,
            return_probabilities=True)
        if probs is None:
            probs = np.empty((num_passes, *probabilities.shape), dtype=np.float32)
        probs[j] = probabilities
    return probs
