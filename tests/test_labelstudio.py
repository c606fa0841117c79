"""``lit_al labelstudio push|pull|watch`` against a real Label Studio server (``label_studio_server``).

Two rounds as a team would run them: push the batch → an annotator answers through Label
Studio's API (what its labeling page sends) → pull → train → push the next batch; a pull
SIGKILLed between reading the answers and importing them, and a watch SIGKILLed between
importing and training, are run again: nothing lost, nothing imported twice, no task twice
(``loop.overlap.enabled: false``: the synchronous watch). The overlapped watch (the default) imports
answers as they arrive, trains on them in the background, survives a SIGKILL mid-batch and pushes
the adopted batch.
The training is the tiny random BERT's (``tests/tiny.py``), so a round takes seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest

from annotate_runs import make_run, state
from lit_al.cli import main
from label_studio_server import Server, start_server, unavailable

CLI_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    try:
        import label_studio_sdk  # noqa: F401  (lit_al's side: the labelstudio extra)
    except ImportError:
        unavailable("label-studio-sdk is not installed in lit_al's environment (pip install 'lit_al[labelstudio]')")
    started = start_server(tmp_path_factory.mktemp("label-studio"))
    yield started
    started.stop()


def _env(server: Server, **extra: str) -> dict[str, str]:
    env = {**os.environ, "LABEL_STUDIO_URL": server.url, "LABEL_STUDIO_API_KEY": server.api_key}
    env.update(extra)
    return env


def _lit_al(env: dict[str, str], *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    """``lit_al ARGS`` in a process of its own; ``kill_at``: a function of ``lit_al.integrations.labelstudio``
    (``module.name``) at whose call the process SIGKILLs itself, as a crash or ``kill -9`` would."""
    code = "import sys; from lit_al.cli import main; sys.exit(main(sys.argv[1:]))"
    if kill_at is not None:
        module, name = kill_at.rsplit(".", 1)
        code = (f"import os, signal, importlib; m = importlib.import_module('lit_al.integrations.labelstudio.{module}'); "
                f"setattr(m, {name!r}, lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)); " + code)
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S)


def _client(server: Server):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=server.url, api_key=server.api_key)


def _tasks(client, project: int) -> list[dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [task.dict() for task in client.tasks.list(project=project, fields="all")]


def _annotate(client, project: int, round_index: int, gold: dict[str, list[str]], cancel: int = 0,
              limit: int | None = None) -> int:
    """Answer the open tasks of a round (``limit``: that many) as an annotator does on the labeling page; the first
    ``cancel`` are skipped."""
    done = 0
    for task in _tasks(client, project):
        if task["data"]["lit_al_round"] != round_index or task["annotations"] or done == limit:
            continue
        if done < cancel:
            client.annotations.create(id=task["id"], result=[], was_cancelled=True)
        else:
            choices = gold[task["data"]["lit_al_id"]]
            client.annotations.create(id=task["id"], was_cancelled=False, result=[
                {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": choices}}])
        done += 1
    return done


def _wait_for(what: str, check, process: subprocess.Popen | None, log: Path, timeout: float = 400.0):
    """``check()``'s first true value; fails if ``process`` (the watch) exits first, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"watch exited ({process.returncode}) before {what}: {log.read_text()[-2000:]}")
        time.sleep(1)
    pytest.fail(f"no {what} within {timeout} s: {log.read_text()[-2000:]}")


def _person_records(run_dir: Path) -> list[dict]:
    return [r for r in state(run_dir)["records"] if r["source"] == "person"]


def _in_process(monkeypatch, capsys, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``lit_al ARGS`` in this process (no second torch import: the ordinary commands are quick to test)."""
    with monkeypatch.context() as patch:
        for key in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):
            patch.delenv(key, raising=False)
            if key in env:
                patch.setenv(key, env[key])
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
    return code, out, err


def _synchronous(run_dir: Path) -> None:
    """``loop.overlap.enabled: false`` in the run's config: watch pulls a finished batch and trains, as before."""
    config = run_dir / "config.yaml"
    text = config.read_text(encoding="utf-8")
    assert "overlap:\n    enabled: true" in text
    config.write_text(text.replace("overlap:\n    enabled: true", "overlap:\n    enabled: false"), encoding="utf-8")


def test_two_rounds_in_a_live_project_survive_kills(tmp_path, tiny_bert, server, monkeypatch, capsys):
    run_dir, gold = make_run(tmp_path, tiny_bert, n=8, query_size=6)
    _synchronous(run_dir)
    env = _env(server)
    outputs: list[str] = []

    def ok(*args: str) -> str:
        code, out, err = _in_process(monkeypatch, capsys, env, *args)
        outputs.extend([out, err])
        assert code == 0, err
        return out

    # round 0's batch (keyword hits, no model yet): the project is made, the tasks imported once
    assert "round 0: 8 task(s) added" in ok("labelstudio", "push", str(run_dir))
    assert "round 0: 0 task(s) added, 8 already there" in ok("labelstudio", "push", str(run_dir))
    project = json.loads((run_dir / "labelstudio.json").read_text())["project"]
    client = _client(server)
    tasks = _tasks(client, project)
    assert len(tasks) == 8 and len(state(run_dir)["pending"]["pool_indices"]) == 8
    assert all(t["data"]["lit_al_round"] == 0 and t["data"]["lit_al_id"] in gold and not t["predictions"] for t in tasks)
    config = client.projects.get(id=project).label_config
    assert 'name="label"' in config and all(f'value="{name}"' in config for name in ("money", "sport", "tech"))

    # one task answered twice (a second annotator, or the same one resubmitting): the latest submitted answer counts
    first = next(t for t in tasks if gold[t["data"]["lit_al_id"]] != ["money"])
    client.annotations.create(id=first["id"], was_cancelled=False, result=[
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["money"]}}])
    time.sleep(1)  # the later annotation is later by its time stamp, not only by its place
    client.annotations.create(id=first["id"], was_cancelled=False, result=[
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": gold[first["data"]["lit_al_id"]]}}])
    assert _annotate(client, project, 0, gold, cancel=1) == 7

    # killed after reading the answers, before importing them: nothing recorded; the re-run imports them once
    killed = _lit_al(env, "labelstudio", "pull", str(run_dir), kill_at="sync.import_answers")
    assert killed.returncode == -signal.SIGKILL
    assert _person_records(run_dir) == [] and state(run_dir)["skipped"] == []
    pulled = ok("labelstudio", "pull", str(run_dir))
    assert "7 labeled, 0 corrected, 1 skipped, 0 already recorded; 0 of the batch" in pulled
    assert f"annotators disagree on 1 item(s), the latest answer counts: {first['data']['lit_al_id']}" in pulled
    assert "0 labeled, 0 corrected, 0 skipped, 8 already recorded" in ok("labelstudio", "pull", str(run_dir))
    records = _person_records(run_dir)
    assert len(records) == 7 and len(state(run_dir)["skipped"]) == 1
    assert all(r["labels"] == gold[r["id"]] and r["annotator"] == "annotator@example.com" for r in records)

    # watch killed between its pull and the training: a second watch trains round 1 and pushes its batch
    killed = _lit_al(env, "labelstudio", "watch", str(run_dir), "--interval", "1", kill_at="watch.train_and_propose")
    assert killed.returncode == -signal.SIGKILL and "8 already recorded" in killed.stdout
    assert state(run_dir)["completed_rounds"] == 0 and len(_person_records(run_dir)) == 7
    log = tmp_path / "watch.log"
    with open(log, "w") as out:
        watch = subprocess.Popen([sys.executable, "-m", "lit_al.cli", "labelstudio", "watch", str(run_dir), "--interval", "1"],
                                 env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        round1 = _wait_for("round 1's tasks", lambda: [t for t in _tasks(client, project) if t["data"]["lit_al_round"] == 1],
                           watch, log)
        assert len(round1) == 6 and not {t["data"]["lit_al_id"] for t in round1} & {r["id"] for r in records}
        for task in round1:  # the model's suggestion is a prediction of round 1's model; the strategy's score a data field
            (prediction,) = task["predictions"]
            assert prediction["model_version"] == "lit_al round 1" and 0 < prediction["score"] <= 1
            assert prediction["result"][0]["value"]["choices"][0] in ("money", "sport", "tech")
            assert isinstance(task["data"]["lit_al_score"], float)
        assert _annotate(client, project, 1, gold) == 6
        _wait_for("round 2's tasks", lambda: [t for t in _tasks(client, project) if t["data"]["lit_al_round"] == 2],
                  watch, log)
        watch.send_signal(signal.SIGTERM)  # Ctrl-C / SIGTERM while it polls
        assert watch.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        if watch.poll() is None:
            watch.kill()
    text = log.read_text()
    outputs.append(text)
    assert "round 1: 6 of 6 answered in Label Studio" in text and "interrupted by SIGTERM; nothing was lost" in text

    final = state(run_dir)
    assert final["completed_rounds"] == 2 and final["pending"]["round"] == 2
    records = _person_records(run_dir)
    assert len(records) == 13 and len({r["id"] for r in records}) == 13
    assert Counter(r["round"] for r in records) == {0: 7, 1: 6}  # the answers to the batches of rounds 0 and 1
    assert all(r["labels"] == gold[r["id"]] for r in records)
    keys = Counter((t["data"]["lit_al_id"], t["data"]["lit_al_round"]) for t in _tasks(client, project))
    assert len(keys) == 8 + 6 + 6 and set(keys.values()) == {1}  # no task twice

    # the key is in no file of the run and in nothing lit_al printed
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert server.api_key.encode() not in path.read_bytes(), path
    assert all(server.api_key not in text for text in outputs)


def test_an_overlapped_watch_imports_answers_as_they_arrive_and_survives_a_kill(tmp_path, tiny_bert, server):
    """``loop.overlap.enabled`` (the default): answers are imported as they arrive and trained on in the background;
    a watch SIGKILLed mid-batch loses nothing, and the next one adopts a background proposal and pushes it."""
    from lit_al.overlap.jobs import list_jobs

    run_dir, gold = make_run(tmp_path, tiny_bert, n=8, query_size=6)
    env = _env(server)
    client = _client(server)
    log = tmp_path / "watch.log"
    command = [sys.executable, "-m", "lit_al.cli", "labelstudio", "watch", str(run_dir), "--interval", "1", "--rounds", "1"]
    with open(log, "w") as out:
        watch = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for("round 0's tasks", lambda: (run_dir / "labelstudio.json").is_file() and len(_tasks(
            client, json.loads((run_dir / "labelstudio.json").read_text())["project"])) == 8, watch, log)
        project = json.loads((run_dir / "labelstudio.json").read_text())["project"]
        assert _annotate(client, project, 0, gold, limit=3) == 3
        _wait_for("the 3 answers' import", lambda: len(_person_records(run_dir)) == 3, watch, log)
        orphan = _wait_for("a background training on them", lambda: next(
            (job for job in list_jobs(run_dir) if job.answers == 3 and job.is_alive()), None), watch, log)
    finally:
        watch.kill()  # SIGKILL mid-batch: no clean-up at all
        watch.wait()
    imported = {r["id"]: r["time"] for r in _person_records(run_dir)}
    assert len(imported) == 3 and state(run_dir)["pending"]["round"] == 0
    assert orphan.is_alive()  # its own session: the watch's death does not stop it
    assert _annotate(client, project, 0, gold) == 5
    # once it has proposed, it is the newest finished training: the next watch adopts its batch (had it still been
    # training, the next watch would adopt the finished one before it, on no answer of the batch, at once)
    _wait_for("the orphaned training's proposal", lambda: orphan.proposal() is not None and not orphan.is_alive(),
              None, log)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "picked by the model trained in the background on" in again.stdout and "--rounds" in again.stdout

    final = state(run_dir)
    assert final["completed_rounds"] == 1 and final["pending"]["round"] == 1
    assert final["proposed_by"]["1"]["overlap"] is True and final["proposed_by"]["1"]["round"] == 1
    assert final["proposed_by"]["1"]["job"] == orphan.number and final["proposed_by"]["1"]["labeled"] == 3
    records = _person_records(run_dir)
    assert len(records) == 8 and len({r["id"] for r in records}) == 8 and all(r["labels"] == gold[r["id"]] for r in records)
    assert all(imported[r["id"]] == r["time"] for r in records if r["id"] in imported)  # imported once, before the kill
    round1 = [t for t in _tasks(client, project) if t["data"]["lit_al_round"] == 1]
    assert len(round1) == 6 and all(t["predictions"][0]["model_version"] == "lit_al round 1" for t in round1)
    keys = Counter((t["data"]["lit_al_id"], t["data"]["lit_al_round"]) for t in _tasks(client, project))
    assert len(keys) == 8 + 6 and set(keys.values()) == {1}  # no task twice
    assert not any(job.is_alive() for job in list_jobs(run_dir))  # watch stopped round 1's training on its way out


def test_connection_problems_are_one_line(tmp_path, tiny_bert, server, monkeypatch, capsys):
    run_dir, _ = make_run(tmp_path, tiny_bert, n=4, query_size=4)
    cases = [
        (_env(server, LABEL_STUDIO_API_KEY="0" * 40), "the API key was refused (401"),
        (_env(server, LABEL_STUDIO_URL="http://127.0.0.1:9"), "cannot reach the server"),
        ({"LABEL_STUDIO_URL": server.url}, "no Label Studio API key: set LABEL_STUDIO_API_KEY"),
        (_env(server, LABEL_STUDIO_URL="127.0.0.1:8080"), "is not a URL"),
    ]
    for env, expected in cases:
        code, _, err = _in_process(monkeypatch, capsys, env, "labelstudio", "push", str(run_dir))
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and expected in lines[0], err
    code, _, err = _in_process(monkeypatch, capsys, _env(server), "labelstudio", "pull", str(run_dir))
    assert code == 1 and "no Label Studio project yet" in err and "labelstudio push" in err
    assert not (run_dir / "labelstudio.json").exists()


def _task(number: int, example_id: str | None, round_index: int, annotations: list[dict]) -> dict:
    data = {"text": "t"} if example_id is None else {"text": "t", "lit_al_id": example_id, "lit_al_round": round_index}
    return {"id": number, "data": data, "annotations": annotations}


def _choice(name: str, user: int = 1, cancelled: bool = False) -> dict:
    result = [] if cancelled else [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [name]}}]
    return {"id": user, "completed_by": user, "was_cancelled": cancelled, "result": result,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}


def test_batch_answers_take_the_latest_round_of_an_example_and_name_the_annotator():
    """An example left unanswered in one round and proposed again has two tasks: the answered one of the latest round counts."""
    from lit_al.integrations.labelstudio.sync import batch_answers

    tasks = [
        _task(1, "a", 0, [_choice("sport", user=7)]),          # round 0's task of a (answered then; a is pending again)
        _task(2, "b", 0, []),                                  # b: unanswered in round 0 ...
        _task(3, "b", 2, [_choice("tech", user=8)]),           # ... answered in round 2
        _task(4, "a", 2, [_choice("money", user=8)]),
        _task(5, "c", 2, [_choice("", user=7, cancelled=True)]),
        _task(6, "d", 2, []),                                  # not answered yet
        _task(7, "e", 1, [_choice("sport")]),                  # not in the pending batch: left alone
        _task(8, None, 0, [_choice("sport")]),                 # a task lit_al did not write
    ]
    found = batch_answers(tasks, ["a", "b", "c", "d", "f"], 2, {7: "ana@example.com", 8: "bo@example.com"}, "project 1")
    assert found.size == 5 and found.answered == 3 and found.foreign == 1 and found.missing == 1  # f: never pushed
    got = {a.id: (a.labels, a.skip, a.annotator) for a in found.answers}
    assert got == {"a": (("money",), None, "bo@example.com"), "b": (("tech",), None, "bo@example.com"),
                   "c": (None, "skip", "ana@example.com")}


def test_watch_waits_out_a_server_that_does_not_answer(tmp_path, tiny_bert):
    """A server restarting or a network blip does not end a watch: it says so and tries again."""
    pytest.importorskip("label_studio_sdk", reason="the labelstudio extra (label-studio-sdk) is not installed")
    from lit_al.integrations.labelstudio.connection import Connection
    from lit_al.integrations.labelstudio.watch import watch

    run_dir, _ = make_run(tmp_path, tiny_bert, n=4, query_size=4)
    lines: list[str] = []
    naps: list[float] = []

    class Enough(Exception):
        pass

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            raise Enough

    with pytest.raises(Enough):
        watch(run_dir, Connection("http://127.0.0.1:9", "k" * 40), interval=3, say=lines.append, sleep=sleep)
    assert naps == [3, 3] and len(lines) == 2
    assert all("cannot reach the server" in line and line.endswith("trying again in 3 s") for line in lines)
    assert "k" * 40 not in "".join(lines) and not (run_dir / "labelstudio.json").exists()
