"""Real multi-process DDP training steps on the CPU, against one process on the same global batch.

Two ranks (gloo, loopback) run the real ALC trainers through ``initialize()`` and three calls of their own
``train_step``; one more process runs each trainer without DDP on the concatenated global batches. The
work happens in ``tests/ddp_worker.py`` (its docstring says what is replaced: only the device and the
process-group set-up). The global batch is 3 LQ + 1 HQ samples (H-Sup: 4 HQ), laid out LQ first, so rank
0 holds two LQ samples and no HQ sample, rank 1 one LQ and one HQ sample: every loss term is empty on
one of the ranks.

The claims (one test each, per trainer):

1. the DDP run raises nothing (e.g. DDP's "Expected to have finished reduction in the prior iteration"
   when a rank leaves parameters out of its graph);
2. the batch layout is the one above (a harness check: otherwise the other tests prove less);
3. the student, the teacher and the uncertainty-selection window are identical on both ranks;
4. DDP computes what one process computes: the mean over ranks of the per-rank ``train_step`` losses
   equals the one-process loss, and the students (and teachers) end up with the same weights.

For 4 the teacher must be deterministic: no input noise, no dropout, and one pass (identical passes
would only add rounding noise to the uncertainty, which would then decide the selection). The
uncertainty is then exactly 0 for every sample and the selection is decided by the documented tie rules:
per-batch top-k (``ALC_SELECTION_MODE=batch``, ALC) selects the first ceil(k * B_n) = 2 of the 3 LQ
samples, so rank 0 trains L_ls only and rank 1 L_n and L_hs; the windowed rank (ALC w/o LR) selects
every sample and fills the window, whose contents are compared.

One more DDP run, without a one-process reference (its teacher is stochastic), is ALC as it trains: dropout
on (``decoder``, p = 0.5, attached by ``initialize()`` as forward hooks after nnU-Net has wrapped the
network in DDP), input noise and the number of passes at their defaults. After its training steps it goes
through the rest of nnU-Net's epoch 0 as ``run_training`` calls it: ``on_train_epoch_end`` with the
``train_step`` outputs, ``on_validation_epoch_start``, two ``validation_step`` calls on the ranks' slices of
global batches (rank 0 again without an HQ sample) and ``on_validation_epoch_end``, with ``select_on_hq``
set as ``get_dataloaders`` sets it for a fold with HQ validation cases. The claims:

5. it raises nothing on either rank, the dropout hooks sit on the student inside DDP and on the teacher,
   and the ranks end with bit-identical student, teacher and selection state;
6. every value the epoch logged (losses, ALC terms, diagnostics, pseudo Dice) is identical on both ranks;
7. the pseudo Dice that picks ``checkpoint_best`` (``mean_fg_dice``, and its EMA) is the HQ one
   (``pseudo_dice_hq``), from HQ validation samples only, not the Dice over all validation samples;
8. the refinement diagnostics are in range: the weight entropy of Eq. 5 (relative to log m) in (0, 1],
   and the passes differ (mean uncertainty > 0).
"""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from shared_runs import TINY3D as DATASET, clean_env

from nnunetv2_alc.tiny_plans import shrink_network

# module fixtures on conftest.py's tiny3d: one xdist worker runs the module, building each once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tiny3d_modules")]

CONFIGURATION = "3d_fullres"
WORKER = Path(__file__).with_name("ddp_worker.py")
WORLD_SIZE = 2
STEPS = 3
GLOBAL_BATCH = 4
# ALC_HQ_SHARE 0.25 of 4 -> B_h = 1, B_n = 3; nnU-Net's split gives rank 0 positions 0-1, rank 1 positions 2-3
LAYOUT = (3, 1)  # (global LQ, global HQ) for the trainers that train on LQ samples

COMMON_ALC_ENV = {
    "ALC_SEED": "0",  # same initial weights in every process (rank 0's are broadcast by DDP anyway)
    "ALC_HQ_SHARE": "0.25",
    "ALC_NOISE_STD": "0",  # deterministic teacher, see the module docstring
    "ALC_DROPOUT_PLACEMENT": "none",
    "ALC_NUM_PASSES": "1",
    "ALC_K": "0.5",
    "ALC_RAMPUP_FRACTION": "0",  # lambda = lambda_max from the first step on, so the LQ terms count
    "ALC_LAMBDA_MAX": "1",
}
# trainer class -> its own settings on top of COMMON_ALC_ENV
TRAINERS = {
    "nnUNetTrainerALC": {"ALC_SELECTION_MODE": "batch"},
    "nnUNetTrainerMeanTeacher": {},
    "nnUNetTrainerHSup": {},
    "nnUNetTrainerALC_noLS": {},
    "nnUNetTrainerALC_noLR": {"ALC_SELECTION_MODE": "window"},
}
# runs on the DDP ranks only (no one-process reference): name -> case spec of tests/ddp_worker.py. An env value
# None removes the variable, i.e. the setting's default (ALC_NOISE_STD 0.1; ALC_NUM_PASSES 8: with one pass
# the weight entropy of Eq. 5 is undefined).
DROPOUT_CASE = "nnUNetTrainerALC_dropout_epoch"
VALIDATION_STEPS = 2
DDP_ONLY_CASES = {
    DROPOUT_CASE: {"trainer": "nnUNetTrainerALC", "validation_steps": VALIDATION_STEPS,
                   "env": {"ALC_SELECTION_MODE": "batch", "ALC_DROPOUT_PLACEMENT": "decoder", "ALC_DROPOUT_P": "0.5",
                           "ALC_NOISE_STD": None, "ALC_NUM_PASSES": None}},
}
# per-epoch values the dropout run must have logged once (epoch 0), identically on every rank
EPOCH_KEYS = ("train_losses", "val_losses", "mean_fg_dice", "ema_fg_dice", "dice_per_class_or_region", "L_hs",
              "L_ls", "L_n", "L_c", "lambda", "selected_fraction", "mean_uncertainty", "weight_entropy",
              "refined_changed_fraction", "uncertainty_std", "uncertainty_dice_rho", "pseudo_dice_hq",
              "pseudo_dice_lq")

# Tolerances of the DDP-vs-one-process comparison. Both sides run the same float32 arithmetic on different
# batch sizes and sum in a different order (and nnU-Net's DDP loss gives the lowest deep-supervision output
# weight 1e-6 instead of 0), which moves a loss by ~1e-6 relative: the first step is compared that
# tightly. From then on the teacher is an EMA of students that differ at rounding level, so a few of its
# argmax labels near a tie can flip; measured: loss <= 1e-4 relative, weights <= 5e-5 absolute and 0.2% of
# the update's norm. A 10% error in one loss weight (ALC_ALPHA 3 -> 2.7) moves them by 1-3%, 3e-3, 5-10%.
FIRST_STEP_LOSS_RTOL = 2e-5
LOSS_RTOL = 1e-3
WEIGHT_ATOL = 5e-4
UPDATE_RTOL = 1e-2

GROUP_TIMEOUT_S = 300  # a DDP group (or the reference) still running after this is killed
COLLECTIVE_TIMEOUT_S = 60  # inside the workers: a collective waiting longer for a peer raises


@pytest.fixture(scope="module")
def preprocessed(tiny3d, tmp_path_factory) -> tuple[Path, dict]:
    """A copy of the session's tiny synthetic 3D dataset (planned and preprocessed by nnU-Net, tiny network,
    shared_runs.py), global batch 4."""
    root = tmp_path_factory.mktemp("ddp")
    (root / "results").mkdir()
    env = {**clean_env(root), "MKL_NUM_THREADS": "1"}
    tiny3d.copy_dataset(root)
    plans_file = root / "preprocessed" / DATASET / "nnUNetPlans.json"
    shrink_network(plans_file, CONFIGURATION, batch_size=GLOBAL_BATCH)
    # nnU-Net's Dice with batch_dice=True pools the whole batch into one Dice; a loss over a subset of the
    # batch is then no mean of per-sample losses, and no weighting of per-rank losses can reproduce the
    # one-process loss. The planner picks batch_dice=False for this dataset; pin it so the test does not
    # depend on that choice.
    plans = json.loads(plans_file.read_text())
    plans["configurations"][CONFIGURATION]["batch_dice"] = False
    plans_file.write_text(json.dumps(plans, indent=4))
    return root, env


# ---------------------------------------------------------------------------------------------- launching
@dataclasses.dataclass
class TrainerRun:
    """What the workers left for one trainer class: per-rank results, the reference, or the errors."""

    ranks: list | None = None  # one result dict per rank (see ddp_worker.train)
    reference: dict | None = None
    error: str | None = None  # the DDP run's failure, with the workers' tracebacks
    reference_error: str | None = None

    def require_ddp(self) -> list:
        if self.ranks is None:
            pytest.fail(f"the DDP run failed (see test_ddp_train_steps_run_without_error or "
                        f"test_ddp_dropout_epoch_runs_without_error):\n{_tail(self.error)}")
        return self.ranks

    def require_reference(self) -> dict:
        if self.reference is None:
            pytest.fail(f"the one-process reference run failed:\n{_tail(self.reference_error)}")
        return self.reference


def _tail(text: str | None, chars: int = 6000) -> str:
    text = text or "(no message)"
    return text if len(text) <= chars else "...\n" + text[-chars:]


def _free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_env(env: dict, results: Path) -> dict:
    worker_env = {**env, **COMMON_ALC_ENV, "nnUNet_results": str(results), "nnUNet_n_proc_DA": "0"}
    if sys.platform.startswith("linux"):
        worker_env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's connections stay on loopback
    return worker_env


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, str(WORKER), *args], env=env, stdout=f, stderr=subprocess.STDOUT)


def _wait(procs: list[subprocess.Popen], timeout: float) -> str | None:
    """Wait until all exit. Once one fails (or time is up), kill the rest: a peer may wait in a collective.

    Returns None when all exited with 0, else a description of what happened.
    """
    deadline = time.monotonic() + timeout
    while True:
        codes = [p.poll() for p in procs]
        if all(c == 0 for c in codes):
            return None
        failed = [i for i, c in enumerate(codes) if c not in (None, 0)]
        if failed or time.monotonic() > deadline:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
            if failed:
                return f"rank(s) {failed} exited with {[codes[i] for i in failed]}; the others were killed"
            return f"timed out after {timeout:.0f} s; killed every rank"
        time.sleep(0.2)


def _case_specs(names: list[str]) -> list[dict]:
    return [{"name": name, "trainer": name, "env": TRAINERS[name]} if name in TRAINERS
            else {"name": name, **DDP_ONLY_CASES[name]} for name in names]


def _failure_text(name: str, out: Path, logs: list[Path], what: str) -> str:
    errors = [p.read_text() for p in sorted(out.glob(f"{name}.rank*.err"))]
    if not errors:  # killed or stuck before it could report: show the workers' output
        errors = [f"--- {log.name} (last lines)\n{log.read_text()[-3000:]}" for log in logs]
    return f"{name}: {what}\n" + "\n".join(errors)


def _run_ddp_groups(names: list[str], args: list[str], env: dict, out: Path) -> dict[str, str]:
    """Run the trainers in order on WORLD_SIZE ranks; after a failure, a fresh group takes the rest.

    Returns the error text of every trainer whose DDP run failed. A group whose process-group set-up
    failed is started again (twice at most) before its runs count as failed.
    """
    errors: dict[str, str] = {}
    pending = list(names)
    attempt = setup_retries = 0
    while pending:
        cases = out / f"cases_{attempt}.json"
        cases.write_text(json.dumps(_case_specs(pending)))
        init = f"tcp://127.0.0.1:{_free_port()}"
        logs = [out / f"ddp_{attempt}.rank{r}.log" for r in range(WORLD_SIZE)]
        procs = [_start([*args, "--cases", str(cases), "--out", str(out), "--rank", str(r),
                         "--world-size", str(WORLD_SIZE), "--init-method", init], env, logs[r])
                 for r in range(WORLD_SIZE)]
        what = _wait(procs, GROUP_TIMEOUT_S)
        setup_errors = sorted(out.glob("setup.rank*.err"))
        if setup_errors and setup_retries < 2:  # e.g. the free port was taken meanwhile: same runs, new port
            for file in setup_errors:
                file.unlink()
            setup_retries += 1
            attempt += 1
            continue
        unfinished = [n for n in pending if not all((out / f"{n}.rank{r}.pt").is_file() for r in range(WORLD_SIZE))]
        if not unfinished:
            break
        first = unfinished[0]
        errors[first] = _failure_text(first, out, logs, what or "the workers exited 0 without results")
        pending = pending[pending.index(first) + 1:]
        attempt += 1
    return errors


@pytest.fixture(scope="module")
def runs(preprocessed, tmp_path_factory) -> dict[str, TrainerRun]:
    """Every trainer on 2 DDP ranks and, concurrently, in one process (the reference); results per trainer.

    The DDP_ONLY_CASES run after the trainers, on the DDP ranks only.
    """
    root, env = preprocessed
    work = tmp_path_factory.mktemp("ddp_runs")
    ddp_out, ref_out = work / "ddp", work / "reference"
    ddp_out.mkdir()
    ref_out.mkdir()
    names = list(TRAINERS)
    args = ["--dataset", DATASET, "--steps", str(STEPS), "--timeout", str(COLLECTIVE_TIMEOUT_S)]
    ref_cases = ref_out / "cases.json"
    ref_cases.write_text(json.dumps(_case_specs(names)))
    ref_log = ref_out / "reference.log"
    reference = _start([*args, "--cases", str(ref_cases), "--out", str(ref_out)],
                       _worker_env(env, work / "results_reference"), ref_log)
    try:
        ddp_errors = _run_ddp_groups(names + list(DDP_ONLY_CASES), args, _worker_env(env, work / "results_ddp"),
                                     ddp_out)
    finally:
        ref_what = _wait([reference], GROUP_TIMEOUT_S)
    result = {}
    for name in names + list(DDP_ONLY_CASES):
        run = TrainerRun(error=ddp_errors.get(name))
        if run.error is None:
            run.ranks = [torch.load(ddp_out / f"{name}.rank{r}.pt", weights_only=False) for r in range(WORLD_SIZE)]
        ref_file = ref_out / f"{name}.rank0.pt"
        if name not in TRAINERS:
            run.reference_error = f"{name} has no one-process reference"
        elif ref_file.is_file():
            run.reference = torch.load(ref_file, weights_only=False)
        else:
            run.reference_error = _failure_text(name, ref_out, [ref_log], ref_what or "no result")
        result[name] = run
    return result


# ---------------------------------------------------------------------------------------------- comparing
def _max_abs_difference(a: dict, b: dict) -> tuple[float, str]:
    assert a.keys() == b.keys(), f"different state dict keys: {sorted(set(a) ^ set(b))}"
    worst, where = 0.0, ""
    for key in a:
        difference = float((a[key].double() - b[key].double()).abs().max()) if a[key].numel() else 0.0
        if difference > worst or math.isnan(difference):
            worst, where = difference, key
    return worst, where


def _differing_tensors(a: dict, b: dict) -> list[str]:
    assert a.keys() == b.keys(), f"different state dict keys: {sorted(set(a) ^ set(b))}"
    return [key for key in a if not torch.equal(a[key], b[key])]


def _norm(tensors) -> float:
    return math.sqrt(sum(float(t.double().square().sum()) for t in tensors))


def _assert_weights_match(name: str, ddp: dict, reference: dict, initial: dict) -> None:
    """DDP's final weights equal the one-process ones: elementwise, and relative to the update's size."""
    worst, where = _max_abs_difference(ddp, reference)
    keys = [k for k in reference if reference[k].is_floating_point()]
    update = _norm(reference[k] - initial[k] for k in keys)
    mismatch = _norm(ddp[k] - reference[k] for k in keys)
    assert update > 0, f"{name}: the one-process run did not change the weights"
    assert worst <= WEIGHT_ATOL and mismatch <= UPDATE_RTOL * update, (
        f"{name} after {STEPS} steps: DDP vs one process differ by up to {worst:.3g} (at {where}; tolerance "
        f"{WEIGHT_ATOL}); |w_ddp - w_one| = {mismatch:.3g} is {mismatch / update:.3g} of the update "
        f"|w_one - w_init| = {update:.3g} (tolerance {UPDATE_RTOL})")


def _layout(name: str) -> tuple[int, int]:
    return (0, GLOBAL_BATCH) if name == "nnUNetTrainerHSup" else LAYOUT


# ---------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", list(TRAINERS))
def test_ddp_train_steps_run_without_error(runs, name):
    """Claim 1: initialize() and every train_step of the DDP run complete on both ranks."""
    run = runs[name]
    assert run.error is None, _tail(run.error)
    assert all(len(rank["loss"]) == STEPS for rank in run.ranks)
    assert all(math.isfinite(loss) for rank in run.ranks for loss in rank["loss"]), [r["loss"] for r in run.ranks]


@pytest.mark.parametrize("name", list(TRAINERS))
def test_global_batch_is_split_as_planned(runs, preprocessed, name):
    """Claim 2 (harness check): B_n LQ then B_h HQ cases, rank 0 holds no HQ sample, slices = the reference batch."""
    run = runs[name]
    ranks, reference = run.require_ddp(), run.require_reference()
    root, _ = preprocessed
    tags = json.loads((root / "preprocessed" / DATASET / "dataset.json").read_text())["label_quality"]
    num_lq, num_hq = _layout(name)
    for result in (*ranks, reference):
        assert (result["global_num_lq"], result["global_num_hq"]) == (num_lq, num_hq)
    assert [rank["local_batch_size"] for rank in ranks] == [GLOBAL_BATCH // WORLD_SIZE] * WORLD_SIZE
    for step in range(STEPS):
        global_keys = [key for rank in ranks for key in rank["keys"][step]]
        assert global_keys == reference["keys"][step], f"step {step}: the ranks' slices differ from the reference"
        assert [tags[key] for key in global_keys] == ["LQ"] * num_lq + ["HQ"] * num_hq, global_keys
        if num_lq:
            assert "HQ" not in {tags[key] for key in ranks[0]["keys"][step]}, "rank 0 should hold no HQ sample"


@pytest.mark.parametrize("name", list(TRAINERS))
def test_ranks_hold_identical_student_teacher_and_selector(runs, name):
    """Claim 3: after the steps both ranks hold bit-identical student and teacher weights and selection window."""
    ranks = runs[name].require_ddp()
    first, *others = ranks
    for other in others:
        rank = other["rank"]
        assert not _differing_tensors(first["student"], other["student"]), \
            f"student differs between rank 0 and rank {rank}: {_differing_tensors(first['student'], other['student'])}"
        assert (first["teacher"] is None) == (other["teacher"] is None)
        if first["teacher"] is not None:
            assert not _differing_tensors(first["teacher"], other["teacher"]), \
                f"teacher differs between rank 0 and {rank}: {_differing_tensors(first['teacher'], other['teacher'])}"
        assert first["selector"] == other["selector"], f"selection window differs between rank 0 and rank {rank}"
    if name != "nnUNetTrainerHSup":
        assert first["teacher"] is not None, f"{name} should have a teacher"


@pytest.mark.parametrize("name", list(TRAINERS))
def test_ddp_matches_one_process(runs, name):
    """Claim 4: mean over ranks of the step losses = one-process loss; same final student, teacher, window."""
    run = runs[name]
    ranks, reference = run.require_ddp(), run.require_reference()
    assert not _differing_tensors(ranks[0]["initial_student"], reference["initial_student"]), \
        "DDP and the one-process run start from different weights (ALC_SEED)"
    ddp_loss = [sum(rank["loss"][step] for rank in ranks) / len(ranks) for step in range(STEPS)]
    for step, (ddp, one) in enumerate(zip(ddp_loss, reference["loss"])):
        rtol = FIRST_STEP_LOSS_RTOL if step == 0 else LOSS_RTOL
        assert math.isclose(ddp, one, rel_tol=rtol, abs_tol=1e-7), (
            f"{name} step {step}: mean over ranks of the DDP losses {ddp:.7g} (per rank "
            f"{[rank['loss'][step] for rank in ranks]}) != one-process loss {one:.7g} (rtol {rtol}); "
            f"all steps: DDP {ddp_loss}, one process {reference['loss']}")
    _assert_weights_match(f"{name} student", ranks[0]["student"], reference["student"], reference["initial_student"])
    assert (ranks[0]["teacher"] is None) == (reference["teacher"] is None)
    if reference["teacher"] is not None:
        _assert_weights_match(f"{name} teacher", ranks[0]["teacher"], reference["teacher"],
                              reference["initial_student"])
    window, one_window = ranks[0]["selector"], reference["selector"]
    assert window.keys() == one_window.keys()
    assert len(window.get("scores", [])) == len(one_window.get("scores", [])), \
        f"selection windows of different length: DDP {window}, one process {one_window}"
    assert all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9)
               for a, b in zip(window.get("scores", []), one_window.get("scores", []))), (window, one_window)


# ---------------------------------------------------------------------------------------------- dropout, one epoch
def _same(a, b) -> bool:
    """Equal values (scalars or nested lists), NaN equal to NaN."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def _close(a: float, b: float, rel: float) -> bool:
    """math.isclose, NaN close to NaN."""
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=rel)


def _pseudo_dice(tp, fp, fn) -> float:
    """nnU-Net's pseudo Dice of summed counts: mean over foreground classes of 2 tp / (2 tp + fp + fn), NaN skipped."""
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all classes NaN: nanmean of an empty slice
        return float(np.nanmean(2 * tp / (2 * tp + fp + fn)))


def _validation_counts(ranks: list, suffix: str) -> tuple:
    """(tp, fp, fn) per foreground class, summed over the validation steps of every rank."""
    return tuple(sum(np.asarray(o[f"{name}_{suffix}"], dtype=np.float64) for rank in ranks
                     for o in rank["validation_outputs"]) for name in ("tp", "fp", "fn"))


def _epoch_value(rank: dict, key: str) -> float:
    values = rank["logging"][key]
    assert len(values) == 1, f"{key}: expected one value (epoch 0), got {values}"
    return float(values[0])


def test_ddp_dropout_epoch_runs_without_error(runs):
    """Claim 5: training steps with dropout, epoch end and validation complete on both ranks; hooks in place."""
    run = runs[DROPOUT_CASE]
    assert run.error is None, _tail(run.error)
    for rank in run.ranks:
        r = rank["rank"]
        assert rank["ddp_wrapped"], f"rank {r}: the network is not wrapped in DistributedDataParallel"
        assert rank["student_dropout_hooks"] > 0, f"rank {r}: no dropout hook on the student inside DDP"
        assert rank["teacher_dropout_hooks"] == rank["student_dropout_hooks"], \
            f"rank {r}: dropout hooks: teacher {rank['teacher_dropout_hooks']}, student {rank['student_dropout_hooks']}"
        assert len(rank["loss"]) == STEPS and all(math.isfinite(loss) for loss in rank["loss"]), rank["loss"]
        assert len(rank["validation_outputs"]) == VALIDATION_STEPS
        assert rank["current_epoch"] == 0
        for key in EPOCH_KEYS:
            assert len(rank["logging"][key]) == 1, f"rank {r}: {key} logged {rank['logging'][key]}, not once"


def test_ddp_dropout_epoch_ranks_identical(runs):
    """Claim 5: after the dropout steps both ranks hold bit-identical student, teacher and selector state."""
    first, *others = runs[DROPOUT_CASE].require_ddp()
    assert _differing_tensors(first["student"], first["initial_student"]), "the steps did not change the student"
    for other in others:
        rank = other["rank"]
        assert not _differing_tensors(first["student"], other["student"]), \
            f"student differs between rank 0 and rank {rank}: {_differing_tensors(first['student'], other['student'])}"
        assert not _differing_tensors(first["teacher"], other["teacher"]), \
            f"teacher differs between rank 0 and {rank}: {_differing_tensors(first['teacher'], other['teacher'])}"
        assert first["selector"] == other["selector"]


def test_ddp_dropout_epoch_logs_identical_on_ranks(runs):
    """Claim 6: every value logged in epoch 0 (all but the per-rank timestamps) is the same on both ranks."""
    first, *others = runs[DROPOUT_CASE].require_ddp()
    keys = [key for key in first["logging"] if not key.endswith("_timestamps")]
    assert set(EPOCH_KEYS) <= set(keys), f"not logged: {sorted(set(EPOCH_KEYS) - set(keys))}"
    for other in others:
        assert other["logging"].keys() == first["logging"].keys()
        differing = {key: (first["logging"][key], other["logging"][key]) for key in keys
                     if not _same(first["logging"][key], other["logging"][key])}
        assert not differing, f"logged values differ between rank 0 and rank {other['rank']}: {differing}"


def test_ddp_dropout_epoch_checkpoint_dice_is_hq_dice(runs, preprocessed):
    """Claim 7: mean_fg_dice (and ema_fg_dice) = pseudo_dice_hq = the Dice of the HQ validation samples' counts."""
    ranks = runs[DROPOUT_CASE].require_ddp()
    root, _ = preprocessed
    tags = json.loads((root / "preprocessed" / DATASET / "dataset.json").read_text())["label_quality"]
    for step in range(VALIDATION_STEPS):  # harness check: rank 0 validates LQ samples only
        global_keys = [key for rank in ranks for key in rank["validation_keys"][step]]
        assert [tags[key] for key in global_keys] == ["LQ"] * LAYOUT[0] + ["HQ"] * LAYOUT[1], global_keys
        assert "HQ" not in {tags[key] for key in ranks[0]["validation_keys"][step]}
    for rank in ranks:  # select_on_hq: nnU-Net's counts are the HQ ones, on the rank without HQ samples too
        for output in rank["validation_outputs"]:
            for name in ("tp", "fp", "fn"):
                assert np.array_equal(output[f"{name}_hard"], output[f"{name}_hq"]), \
                    f"rank {rank['rank']}: {name}_hard {output[f'{name}_hard']} != {name}_hq {output[f'{name}_hq']}"
    mean_fg, hq = _epoch_value(ranks[0], "mean_fg_dice"), _epoch_value(ranks[0], "pseudo_dice_hq")
    assert _close(mean_fg, hq, 1e-6), f"mean_fg_dice {mean_fg} != pseudo_dice_hq {hq}"
    assert _close(_epoch_value(ranks[0], "ema_fg_dice"), mean_fg, 1e-6), "epoch 0: ema_fg_dice != mean_fg_dice"
    from_counts = _pseudo_dice(*_validation_counts(ranks, "hq"))
    assert _close(hq, from_counts, 1e-5), f"pseudo_dice_hq {hq} != Dice of the HQ validation counts {from_counts}"
    lq = _epoch_value(ranks[0], "pseudo_dice_lq")
    lq_from_counts = _pseudo_dice(*_validation_counts(ranks, "lq"))
    assert _close(lq, lq_from_counts, 1e-5), f"pseudo_dice_lq {lq} != Dice of the LQ validation counts {lq_from_counts}"


def test_ddp_dropout_epoch_checkpoint_dice_is_not_all_sample_dice(runs):
    """Claim 7: mean_fg_dice is not the Dice over all validation samples (skipped where the two coincide)."""
    ranks = runs[DROPOUT_CASE].require_ddp()
    hq_counts, lq_counts = _validation_counts(ranks, "hq"), _validation_counts(ranks, "lq")
    all_samples = _pseudo_dice(*(hq + lq for hq, lq in zip(hq_counts, lq_counts)))
    hq = _pseudo_dice(*hq_counts)
    if _close(all_samples, hq, 1e-3):
        pytest.skip(f"the validation data do not tell them apart: Dice of all samples {all_samples}, of HQ ones {hq}")
    mean_fg = _epoch_value(ranks[0], "mean_fg_dice")
    assert not _close(mean_fg, all_samples, 1e-4), \
        f"mean_fg_dice {mean_fg} is the Dice of all validation samples {all_samples} (HQ only: {hq})"


def test_ddp_dropout_epoch_diagnostics_in_range(runs):
    """Claim 8: weight entropy / log m in (0, 1]; the stochastic passes differ (mean uncertainty > 0)."""
    first = runs[DROPOUT_CASE].require_ddp()[0]
    entropy = _epoch_value(first, "weight_entropy")
    # <= 1 up to float32 rounding: H(w) / log m reaches 1 at uniform weights
    assert math.isfinite(entropy) and 0 < entropy <= 1 + 1e-6, f"weight_entropy {entropy} not in (0, 1]"
    uncertainty = _epoch_value(first, "mean_uncertainty")
    assert math.isfinite(uncertainty) and uncertainty > 0, f"mean_uncertainty {uncertainty}: passes do not differ"
