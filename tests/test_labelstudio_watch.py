"""``lit_al labelstudio watch`` and the overlapped loop (``lit_al.overlap``), against a stand-in Label Studio client.

The project lives in a JSON file behind the SDK's calls (``fake_label_studio``); everything of
lit_al runs for real: push, the Label Studio reader, the validated import, the background
trainings (worker processes training the tiny BERT), adoption, the synchronous round. The live
test (``tests/test_labelstudio.py``) runs the same watcher against a real Label Studio server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("label_studio_sdk", reason="the labelstudio extra (label-studio-sdk) is not installed")

from annotate_runs import copy_run, state, wait_for  # noqa: E402
from fake_label_studio import FakeLabelStudio  # noqa: E402
from lit_al.integrations.labelstudio.connection import Connection  # noqa: E402
from lit_al.integrations.labelstudio.watch import POLL_S, watch  # noqa: E402
from lit_al.overlap.jobs import list_jobs, read_history  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
CONNECTION = Connection("http://label-studio.test", "k" * 40)



def _set_config(run_dir: Path, old: str, new: str) -> None:
    config = run_dir / "config.yaml"
    text = config.read_text(encoding="utf-8")
    assert old in text
    config.write_text(text.replace(old, new), encoding="utf-8")


def _person(run_dir: Path) -> list[dict]:
    return [r for r in state(run_dir)["records"] if r["source"] == "person"]


def _exited(pid: int | None) -> bool:
    """Whether the process is gone or a zombie (an exiting process has an empty command line a while before)."""
    try:
        return pid is None or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _no_job_runs(run_dir: Path) -> bool:
    """No background training runs: each finished (its proposal written, its process exited) or was removed."""
    return all(job.proposal() is not None and _exited(job.pid()) for job in list_jobs(run_dir))


def test_answers_feed_the_background_trainings_and_the_adopted_batch_is_pushed_at_once(run, tmp_path):
    run_dir, gold = run
    ls = FakeLabelStudio(tmp_path / "label-studio.json")
    lines: list[str] = []
    looks: list[tuple[int, int, int]] = []  # at each wait: person records, round-1 tasks, seconds asked

    def sleep(seconds: float) -> None:
        looks.append((len(_person(run_dir)), len(ls.round_tasks(1)), seconds))
        if seconds == POLL_S:  # the batch is done and the watcher waits for a background training
            time.sleep(0.2)
            return
        wait_for(lambda: _no_job_runs(run_dir), what="the background training")  # a person slower than training
        ls.annotate(0, gold, 3, skip=1 if not ls.round_tasks(0)[0]["annotations"] else 0)

    result = watch(run_dir, CONNECTION, interval=5, rounds=1, say=lines.append, sleep=sleep, client=ls)

    assert result.rounds == 1 and "--rounds" in result.reason
    # imported as they arrived: 3 answers (one a skip) before the 6th, 6 before the 8th, each once
    assert [look[:2] for look in looks] == [(0, 0), (2, 0), (5, 0)]
    saved = state(run_dir)
    assert len(_person(run_dir)) == 7 and len(saved["skipped"]) == 1 and saved["completed_rounds"] == 1
    assert all(r["labels"] == gold[r["id"]] and r["annotator"] == "ana@example.com" for r in _person(run_dir))
    # the freshest finished model (on the 6 answers before the last look: 5 labels, 1 skip) proposed round 1's batch ...
    proposer = saved["proposed_by"]["1"]
    assert proposer["overlap"] is True and proposer["round"] == 1 and (proposer["answers"], proposer["labeled"]) == (6, 5)
    history = {int(row["job"]): row for row in read_history(run_dir)}
    assert [int(row["answers"]) for row in history.values()] == [0, 3, 6]
    assert history[proposer["job"]]["adopted_for"] == "1"
    # ... and was pushed at once: the look that imported the last answers adopted it, the next pushed it, no wait between
    round1 = ls.round_tasks(1)
    assert len(round1) == 6 and len(ls.load()["imports"]) == 2
    assert {task["data"]["lit_al_id"] for task in round1}.isdisjoint({r["id"] for r in saved["records"]})
    assert all(task["predictions"][0]["model_version"] == "lit_al round 1" for task in round1)
    assert any("imported as they arrived: 2 labeled, 0 corrected, 1 skipped" in line for line in lines)
    assert any("picked by the model trained in the background on 5 labels: pushing it" in line for line in lines)
    assert _no_job_runs(run_dir)  # watch stopped round 1's training on its way out


def test_the_synchronous_watch_is_one_setting_away(run, tmp_path):
    run_dir, gold = run
    _set_config(run_dir, "overlap:\n    enabled: true", "overlap:\n    enabled: false")
    ls = FakeLabelStudio(tmp_path / "label-studio.json")
    lines: list[str] = []
    looks: list[int] = []

    def sleep(seconds: float) -> None:
        looks.append(len(_person(run_dir)))
        ls.annotate(0, gold, 5)

    result = watch(run_dir, CONNECTION, interval=5, rounds=1, say=lines.append, sleep=sleep, client=ls)

    assert result.rounds == 1 and looks == [0, 0]  # nothing is imported before the batch is done
    saved = state(run_dir)
    assert saved["proposed_by"]["1"]["overlap"] is False and len(_person(run_dir)) == 8
    assert not (run_dir / "overlap").exists() and len(ls.round_tasks(1)) == 6
    assert "round 0: 8 of 8 answered in Label Studio" in lines


_WATCHER = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from fake_label_studio import FakeLabelStudio
from lit_al.integrations.labelstudio import watch as w
from lit_al.integrations.labelstudio.connection import Connection
run_dir, kill_at_push = Path(sys.argv[1]), sys.argv[3] == "kill_at_push"
if kill_at_push:  # killed once the adopted batch is pending, before it is pushed
    original = w.push
    def push(*args, **kwargs):
        if w.load_run(run_dir)[1].pending.round == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
    w.push = push
w.watch(run_dir, Connection("http://label-studio.test", "k" * 40), interval=0.2, rounds=1,
        client=FakeLabelStudio(Path(sys.argv[2])), say=lambda line: print(line, flush=True))
"""


def _watcher(run_dir: Path, ls: FakeLabelStudio, how: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with open(log, "a", encoding="utf-8") as out:
        return subprocess.Popen([sys.executable, "-c", _WATCHER.format(tests=str(TESTS)), str(run_dir), str(ls.path), how],
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def test_a_killed_watcher_loses_no_answer_imports_none_twice_and_its_training_is_adopted(run, tmp_path):
    run_dir, gold = run
    ls = FakeLabelStudio(tmp_path / "label-studio.json")
    log = tmp_path / "watch.log"
    watcher = _watcher(run_dir, ls, "", log)
    try:
        wait_for(lambda: len(ls.round_tasks(0)) == 8, what="round 0's push")
        wait_for(lambda: _no_job_runs(run_dir) and list_jobs(run_dir), what="the first background training")
        ls.annotate(0, gold, 3)
        orphan = wait_for(lambda: next((j for j in list_jobs(run_dir) if j.answers == 3 and j.is_alive()), None),
                           what="a training on the 3 answers")
    finally:
        watcher.kill()  # SIGKILL: no clean-up at all
        watcher.wait()
    imported = {r["id"]: r["time"] for r in _person(run_dir)}
    assert len(imported) == 3 and orphan.is_alive()  # its own session: the watcher's death does not stop it
    ls.annotate(0, gold, 5)
    wait_for(lambda: orphan.proposal() is not None and not orphan.is_alive(), what="the orphan's proposal")

    killed = _watcher(run_dir, ls, "kill_at_push", log)  # adopts the orphan's batch, killed before pushing it
    assert killed.wait(timeout=300) == -signal.SIGKILL, log.read_text()
    saved = state(run_dir)
    assert saved["pending"]["round"] == 1 and saved["proposed_by"]["1"]["job"] == orphan.number
    assert ls.round_tasks(1) == []

    watch(run_dir, CONNECTION, interval=0.2, rounds=0, say=lambda line: None, client=ls)  # pushes the batch, then stops
    records = _person(run_dir)
    assert len(records) == 8 and len({r["id"] for r in records}) == 8  # every answer once ...
    assert all(imported[r["id"]] == r["time"] for r in records if r["id"] in imported)  # ... the first import kept
    assert all(r["labels"] == gold[r["id"]] for r in records)
    assert state(run_dir)["proposed_by"]["1"]["job"] == orphan.number  # adopted once
    pushes = ls.load()["imports"]
    assert [len(ids) for ids in pushes] == [8, 6] and len(ls.round_tasks(1)) == 6  # no task twice


def test_a_background_training_that_dies_is_restarted_then_reported_and_the_synchronous_round_goes_on(run, tmp_path):
    run_dir, gold = run
    ls = FakeLabelStudio(tmp_path / "label-studio.json")
    lines: list[str] = []
    killed: list[int] = []

    def sleep(seconds: float) -> None:
        if seconds != POLL_S:
            ls.annotate(0, gold, 8)
        for job in list_jobs(run_dir):  # every background training dies at once (a dead one takes a moment to be reaped)
            if job.pid() and job.number not in killed:
                os.kill(job.pid(), signal.SIGKILL)
                killed.append(job.number)
        time.sleep(0.2)

    result = watch(run_dir, CONNECTION, interval=5, rounds=1, say=lines.append, sleep=sleep, client=ls)

    assert result.rounds == 1 and len(killed) == 3  # the first, then loop.overlap.max_restarts (2) restarts
    failed = [line for line in lines if line.startswith("background training failed:")]
    assert len(failed) == 1 and "stopped: killed by SIGKILL" in failed[0]
    assert any("the synchronous round trains on every label" in line for line in lines)
    saved = state(run_dir)
    assert saved["proposed_by"]["1"]["overlap"] is False and len(_person(run_dir)) == 8
    assert len(ls.round_tasks(1)) == 6


def test_answers_changed_in_label_studio_after_their_import_are_reported_or_with_overwrite_imported(run, tmp_path):
    """Imported as they arrive, an answer may change in Label Studio before the batch is done: never silently."""
    from lit_al.integrations.labelstudio.sync import BatchAnswers, load_run
    from lit_al.integrations.labelstudio.watch import _Watcher
    from lit_al.labeling import Answer

    run_dir, gold = run
    data, saved = load_run(run_dir)
    a, b, c, d = (data.pool.ids[i] for i in saved.pending.pool_indices[:4])
    other = next(name for name in ("money", "sport", "tech") if [name] != gold[a])

    def look(watcher: _Watcher, *answers: Answer) -> None:
        data, saved = load_run(run_dir)
        watcher._import(data, saved, BatchAnswers(0, list(answers), 8, 0))

    def answer(example_id: str, labels: list[str] | None) -> Answer:
        return Answer(example_id, None if labels is None else tuple(labels), "skip" if labels is None else None,
                      "ana@example.com", f"Label Studio project 1: task {example_id}")

    for overwrite in (False, True):
        run_dir = copy_run(run[0], tmp_path / f"run-{overwrite}")
        lines: list[str] = []
        watcher = _Watcher(run_dir, CONNECTION, None, None, None, None, overwrite, lines.append, lambda s: None)
        look(watcher, answer(a, gold[a]), answer(b, None), answer(d, gold[d]))
        first = {r["id"]: r["time"] for r in _person(run_dir)}
        # a relabeled, b (skipped) labeled now, c answered for the first time, d skipped after its label
        look(watcher, answer(a, [other]), answer(b, gold[b]), answer(c, gold[c]), answer(d, None))
        records = {r["id"]: r["labels"] for r in _person(run_dir)}
        assert records[b] == gold[b] and records[c] == gold[c] and records[d] == gold[d] and d not in state(run_dir)["skipped"]
        refused = [line for line in lines if f"id {d!r} is already labeled" in line]
        assert len(refused) == 1 and refused[0].endswith("the recorded answer stands")
        changed = [line for line in lines if "changed in Label Studio after they were imported" in line]
        if overwrite:
            assert records[a] == [other] and not changed
        else:
            assert records[a] == gold[a] and {r["id"]: r["time"] for r in _person(run_dir)}[a] == first[a]
            assert changed == ["1 answer(s) changed in Label Studio after they were imported; the imported ones stand "
                               "(watch --overwrite true lets a change correct them)"]
        look(watcher, answer(a, [other]), answer(d, None))  # the same look again: said once, nothing written
        assert len(lines) == len(set(lines))
