"""ALC with an oracle (a diagnostic, not a method): selected LQ samples train on their clean label.

Everything else is ALC's (selection by Eq. 7, L_n on the unselected noisy labels, L_c), so the gap
between this trainer and ALC is what a perfect label refinement (Eq. 5-6) could add at most. Needs the
clean label of every LQ training case beside the noisy ones (``labelsTr_clean/`` in nnUNet_raw, as
``nnUNetv2_alc_make_noisy`` keeps them); docs/benchmarks.md, "Real data".
"""

from batchgenerators.utilities.file_and_folder_operations import join
from torch import Tensor

from nnunetv2.paths import nnUNet_raw

from nnunetv2_alc.clean_labels import clean_label_files
from nnunetv2_alc.label_correction import TeacherPasses
from nnunetv2_alc.label_quality import LQ
from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC


class nnUNetTrainerALC_oracle(nnUNetTrainerALC):
    display_name = "ALC, oracle labels"  # in tables, plots and logs

    def _clean_label_folder(self, tr_keys) -> str | None:
        lq_keys = [k for k in tr_keys if self.label_quality[k] == LQ]
        raw_folder = join(nnUNet_raw.get(), self.plans_manager.dataset_name) if nnUNet_raw.is_set() else None
        missing = sorted(set(lq_keys) - set(clean_label_files(raw_folder, lq_keys, self.dataset_json["file_ending"])))
        if missing:
            raise FileNotFoundError(
                f"{type(self).__name__} trains selected LQ samples on their clean labels, but {len(missing)} LQ "
                f"case(s) have none in {raw_folder}/labelsTr_clean/ (first: {missing[0]}). Make the noisy labels "
                "with nnUNetv2_alc_make_noisy, which keeps the clean ones there.")
        return super()._clean_label_folder(tr_keys)

    def corrected_labels(self, passes: TeacherPasses) -> Tensor:
        # train_step sets lq_clean_labels (the clean labels of this batch's LQ samples) before the loss terms
        if self.lq_clean_labels is None:  # None would silently train Mean Teacher instead
            raise RuntimeError(f"{type(self).__name__}: no clean labels reached this training step (a cascade, or "
                               "label-correction monitoring off); the oracle needs labelsTr_clean/")
        return self.lq_clean_labels
