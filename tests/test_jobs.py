"""nnunetv2_alc.jobs.predict_command: the nnUNetv2_predict line the demo and the benchmarks run."""

from __future__ import annotations

import pytest

from nnunetv2_alc.jobs import predict_command


@pytest.mark.parametrize("device, workers", [("cpu", "0"), ("cuda", "1")])
def test_cpu_predicts_in_one_process_and_tta_is_optional(device, workers):
    command = predict_command("in", "out", "931", "2d", "all", "nnUNetTrainerALC", device, tta=False)
    assert command[0] == "nnUNetv2_predict" and command[-1] == "--disable_tta"
    options = dict(zip(command[1:-1:2], command[2:-1:2]))
    assert options == {"-i": "in", "-o": "out", "-d": "931", "-c": "2d", "-f": "all", "-tr": "nnUNetTrainerALC",
                       "-device": device, "-npp": workers, "-nps": workers}
    assert "--disable_tta" not in predict_command("in", "out", "931", "2d", "0", "nnUNetTrainerALC", device)
