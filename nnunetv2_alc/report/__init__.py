"""Label-quality report of a trained ALC model (``nnUNetv2_alc_report``; see docs/demo_and_report.md).

For every LQ training case the teacher runs m stochastic passes with nnU-Net's sliding-window
inference (:mod:`.passes`); the passes give the refined label (Eq. 5-6) and the sample uncertainty
(Eq. 7) (:mod:`.scoring`); the cases are ranked, most suspicious label first (:mod:`.table`), and the
worst are drawn (:mod:`.sheet`). :func:`write_label_report` does it all; ``main`` is the command.
"""

from .cli import main
from .run import write_label_report

__all__ = ["main", "write_label_report"]
