"""The overlapped loop (``lit_al.overlap``): background trainings while a person labels, and what they record.

Real worker processes train the tiny BERT; every test stops the workers it started.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the labeling page needs the 'annotate' extra (starlette, uvicorn)")
pytest.importorskip("httpx", reason="Starlette's test client needs httpx (the 'annotate' extra)")

import re  # noqa: E402

from starlette.testclient import TestClient  # noqa: E402

from annotate_runs import copy_run, state, wait_for  # noqa: E402
from lit_al.annotate import RunStore, create_app  # noqa: E402
from lit_al.annotate.app import PAGE_HEADER  # noqa: E402
from lit_al.overlap.jobs import PROPOSAL_FILE, list_jobs, read_history  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]



def _page(store: RunStore) -> TestClient:
    """A client that sends what the page sends: the page's secret (from its HTML) with every request."""
    client = TestClient(create_app(store))
    client.headers[PAGE_HEADER] = re.search(r'<meta name="lit-al-page" content="([^"]+)">', client.get("/").text).group(1)
    return client


def _answer(client: TestClient, example_id: str, labels: list[str]) -> dict:
    response = client.post("/api/answer", json={"client": "c1", "id": example_id, "labels": labels})
    assert response.status_code == 200, response.text
    return response.json()


def _item(client: TestClient) -> dict:
    """What the page does on load: take an item (a POST: it leases one)."""
    response = client.post("/api/take", json={"client": "c1"})
    assert response.status_code == 200, response.text
    return response.json()


def _records(run_dir: Path) -> dict[str, tuple]:
    return {r["id"]: (tuple(r["labels"]), r["round"], r.get("time")) for r in state(run_dir)["records"]}


def test_the_next_batch_is_ready_when_the_last_answer_arrives_and_the_state_says_who_proposed_it(run):
    run_dir, gold = run
    store = RunStore(run_dir, overlap=True)
    client = _page(store)
    try:
        view = _item(client)  # the first request starts a background job for batch 0 (round 1's model): nothing labeled
        assert view["mode"] == "item" and store.background.status().state == "running"
        first_batch = set(state(run_dir)["pending"]["pool_indices"])
        for _ in range(2):  # loop.overlap.retrain_every: a quarter of query_size 6, rounded up
            view = _answer(client, view["item"]["id"], gold[view["item"]["id"]])
        assert store.background.wait(240)
        view = _item(client)  # two answers since the last snapshot: a job on every label so far
        running = store.background.status()
        assert running.state == "running" and running.labeled == 2 and running.answers == 2
        assert store.background.wait(240)
        while view["mode"] == "item" and view["round"] == 0:
            view = _answer(client, view["item"]["id"], gold[view["item"]["id"]])
        # the answer that completed the batch came back with the next batch's first item: no waiting
        assert view["mode"] == "item" and view["round"] == 1 and view["progress"]["batch_answered"] == 0
        assert view["item"]["suggestion"]  # a trained model's suggestions
        saved = state(run_dir)
        pending = saved["pending"]
        assert saved["completed_rounds"] == 1 and pending["round"] == 1 and len(pending["pool_indices"]) == 6
        labeled = {r["pool_index"] for r in saved["records"]}
        assert len(labeled) == 8 and labeled == first_batch  # every answer once, all of the first batch
        assert not set(pending["pool_indices"]) & (labeled | first_batch)
        proposer = saved["proposed_by"]["1"]
        history = {int(row["job"]): row for row in read_history(run_dir)}
        adopted = history[proposer["job"]]
        assert proposer["overlap"] is True and proposer["round"] == 1 and adopted["adopted_for"] == "1"
        assert adopted["round"] == "1"  # the model that proposed batch 1 is round 1's, in models.csv too
        assert proposer["labeled"] == int(adopted["labeled"]) >= 2 and proposer["time"] == adopted["trained_at"]
        assert max(int(row["labeled"]) for row in history.values() if row["trained_at"] <= proposer["time"]) \
            == proposer["labeled"]  # the freshest finished model proposed it
        with open(run_dir / "rounds" / "round_000" / "selected.csv", encoding="utf-8") as handle:
            selected = list(csv.DictReader(handle))
        assert {row["id"]: [row["label"]] for row in selected} == {i: gold[i] for i in (row["id"] for row in selected)}
        assert len(selected) == 8
        assert (run_dir / "rounds" / "round_001" / "to_label.csv").is_file()
        assert json.loads((run_dir / "model" / "lit_al_model.json").read_text())["round"] == 1
        with open(run_dir / "metrics.csv", encoding="utf-8") as handle:
            (row,) = [r for r in csv.DictReader(handle) if r["round"] == "1"]  # the row of the batch it proposed
        assert int(float(row["labeled"])) == proposer["labeled"] and "trained_round" not in row
        assert store.background.status().state == "running"  # round 1's first job trains on the 8 labels
        assert [job.labeled for job in list_jobs(run_dir)] == [8]
    finally:
        store.stop()
    assert all(job.proposal() is not None and not job.is_alive() for job in list_jobs(run_dir))  # finished ones stay


def _kill_when(store: RunStore, marker: str | None) -> str:
    """SIGKILL the running background worker (once its log shows ``marker``); returns the job's name."""
    job = wait_for(lambda: next((j for j in list_jobs(store.run_dir) if store.background._alive(j)), None),
                    what="a running job")
    if marker is not None:
        wait_for(lambda: any(marker in line for line in job.log_tail()), what=marker)
    os.kill(job.pid(), signal.SIGKILL)
    wait_for(lambda: not store.background._alive(job), what="the worker's death")  # its threads take a moment
    return job.name


def test_a_killed_background_training_is_restarted_then_reported_and_nothing_is_lost(run):
    run_dir, gold = run
    store = RunStore(run_dir, overlap=True)
    client = _page(store)
    try:
        view = _item(client)
        answers = {}
        while view["mode"] == "item":
            answers[view["item"]["id"]] = gold[view["item"]["id"]]
            view = _answer(client, view["item"]["id"], gold[view["item"]["id"]])
        before = _records(run_dir)
        assert len(before) == 8 and view["mode"] == "training"  # no proposal yet: the page waits
        killed = [_kill_when(store, None)]  # as soon as it runs
        view = _item(client)
        assert view["mode"] == "training" and store.background.failures == 1  # restarted
        killed.append(_kill_when(store, "training on"))  # in the middle of training
        view = _item(client)
        assert view["mode"] == "training" and store.background.failures == 2
        killed.append(_kill_when(store, None))
        view = _item(client)  # a third death in a row (loop.overlap.max_restarts: 2): reported, not restarted
        assert view["mode"] == "batch_done", view
        assert "stopped: killed by SIGKILL" in view["message"] and killed[-1] in view["message"]
        assert store.background.status().state == "failed" and list_jobs(run_dir) == []
        progress = client.get("/api/round").json()
        assert progress["state"] == "failed" and "killed by SIGKILL" in progress["message"]
        assert _records(run_dir) == before and state(run_dir)["pending"]["round"] == 0
    finally:
        store.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _http(base: str, path: str, body: dict | None = None, secret: str = "") -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json",
                                                                       PAGE_HEADER: secret})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _secret(base: str) -> str:
    with urllib.request.urlopen(base + "/", timeout=60) as response:
        return re.search(r'<meta name="lit-al-page" content="([^"]+)">', response.read().decode()).group(1)


def test_a_killed_server_loses_no_answer_and_its_background_training_is_adopted_later(run):
    run_dir, gold = run
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, "-m", "lit_al.cli", "annotate", str(run_dir), "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        def page_secret():
            try:
                return _secret(base)
            except OSError:
                return None

        secret = wait_for(page_secret, 120, "the server")
        view = _http(base, "/api/take", {"client": "c1"}, secret)
        while view["mode"] == "item":
            view = _http(base, "/api/answer", {"client": "c1", "id": view["item"]["id"], "labels": gold[view["item"]["id"]]},
                         secret)
        assert view["mode"] == "training"
        before = _records(run_dir)
        (job,) = list_jobs(run_dir)
        assert job.is_alive() and not (job.directory / PROPOSAL_FILE).exists()
    finally:
        server.kill()  # SIGKILL: no clean-up at all
        server.wait()
    assert _records(run_dir) == before and len(before) == 8
    assert job.is_alive()  # its own session: the server's death does not stop it
    wait_for(lambda: (job.directory / PROPOSAL_FILE).exists() and not job.is_alive(), what="the orphan's proposal")
    store = RunStore(run_dir, overlap=True)  # the server started again
    try:
        view = _item(_page(store))
        assert view["mode"] == "item" and view["round"] == 1
        saved = state(run_dir)
        assert saved["proposed_by"]["1"]["job"] == job.number and _records(run_dir) == before
    finally:
        store.stop()


def test_a_training_that_died_while_no_server_ran_is_restarted(run):
    run_dir, gold = run
    store = RunStore(run_dir, overlap=True)
    client = _page(store)
    _item(client)
    (job,) = list_jobs(run_dir)
    store.background._processes.clear()  # as if the server had died: the worker is no child of the new one
    os.kill(job.pid(), signal.SIGKILL)
    wait_for(lambda: not job.is_alive(), what="the worker's death")
    store = RunStore(run_dir, overlap=True)
    try:
        _item(_page(store))
        assert store.background.failures == 1 and "stopped without a proposal" in store.background.status().message
        (again,) = list_jobs(run_dir)
        assert again.number == job.number + 1 and store.background._alive(again)
    finally:
        store.stop()


@pytest.fixture(scope="module")
def answered_with_proposal(base_run, tmp_path_factory):
    """The run with its whole first batch answered and a finished background job (before adoption)."""
    run_dir = copy_run(base_run[0], tmp_path_factory.mktemp("proposal") / "run")
    gold = base_run[1]
    store = RunStore(run_dir, overlap=False)
    view = store.view("c1", take=True)
    while view["mode"] == "item":
        store.answer("c1", view["item"]["id"], gold[view["item"]["id"]], None, "ana")
        view = store.view("c1", take=True)
    background = RunStore(run_dir, overlap=True).background
    from lit_al.data.state import LabelState

    background._start(LabelState.load(run_dir / "state.json", store.ids))
    assert background.wait(240)
    (job,) = list_jobs(run_dir)
    assert job.proposal() is not None
    return run_dir


_KILL_AT = """
import os, signal, sys
from pathlib import Path
import lit_al.overlap.adoption as adopt
where = sys.argv[2]
target = adopt.LabelState if where.startswith("save") else adopt
name = "save" if where.startswith("save") else where
original = getattr(target, name)
def killed(*args, **kwargs):
    if where != "save_before":
        original(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(target, name, killed)
from lit_al.annotate import RunStore
RunStore(Path(sys.argv[1]), overlap=True).view("c1", take=True)
"""


@pytest.mark.parametrize("where", ["_install_model", "save_before", "save"])  # amid the side files; just before and after the commit
def test_a_server_killed_while_adopting_loses_nothing_and_imports_nothing_twice(answered_with_proposal, tmp_path, where):
    run_dir = copy_run(answered_with_proposal, tmp_path / "run")
    before, state_before = _records(run_dir), (run_dir / "state.json").read_bytes()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run([sys.executable, "-c", _KILL_AT, str(run_dir), where], env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if where == "save":  # killed after the commit point: adopted
        assert state(run_dir)["pending"]["round"] == 1
    else:
        assert (run_dir / "state.json").read_bytes() == state_before
    store = RunStore(run_dir, overlap=True)
    try:
        view = store.view("c1", take=True)
        assert view["mode"] == "item" and view["round"] == 1
        saved = state(run_dir)
        assert _records(run_dir) == before and saved["completed_rounds"] == 1 and len(saved["pending"]["pool_indices"]) == 6
        assert {j.round for j in list_jobs(run_dir)} == {1}  # batch 0's job folder is gone, batch 1's job runs
        again = (run_dir / "state.json").read_bytes()
        store.view("c1", take=True)
        assert (run_dir / "state.json").read_bytes() == again  # nothing adopted twice
    finally:
        store.stop()


def test_the_synchronous_page_is_one_setting_away(run):
    run_dir, _ = run
    config = run_dir / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("overlap:\n    enabled: true", "overlap:\n    enabled: false"),
                      encoding="utf-8")
    store = RunStore(run_dir)
    assert store.background is None
    assert RunStore(run_dir, overlap=True).background is not None


def test_a_session_adopts_the_batch_trained_while_the_person_answered(base_run, tmp_path):
    from lit_al import Session

    run_dir = copy_run(base_run[0], tmp_path / "run")
    gold = base_run[1]
    session = Session(str(base_run[0].parent / "config.yaml"), run_dir=str(run_dir))
    try:
        batch = session.query()  # nothing answered: the pending batch, and a background job for batch 0 starts
        assert batch.round == 0 and len(batch) == 8 and [job.round for job in list_jobs(run_dir)] == [0]
        assert session._background().wait(240)  # one job at a time: the next starts once this one is done
        session.teach(batch.ids, [gold[i][0] for i in batch.ids])  # retrain_every (2) answers: a job on the 8 labels
        assert [job.labeled for job in list_jobs(run_dir)] == [0, 8]
        assert session._background().wait(240)  # the person takes a while before asking for the next batch
        batch = session.query()  # at once: the freshest finished job's batch
        assert batch.round == 1 and len(batch) == 6 and all(len(s) == 1 for s in batch.suggestions)
        saved = state(run_dir)
        assert saved["proposed_by"]["1"]["overlap"] is True and saved["proposed_by"]["1"]["labeled"] == 8
        assert saved["completed_rounds"] == 1
        assert len(saved["records"]) == 8 and not set(batch.ids) & {r["id"] for r in saved["records"]}
        assert session.model.num_labels == 3
    finally:
        session.close()
    assert all(job.proposal() is not None and not job.is_alive() for job in list_jobs(run_dir))  # finished ones stay


def test_warm_start_and_fewer_epochs_for_models_of_a_partly_answered_batch(answered_with_proposal, base_run, tmp_path):
    run_dir = copy_run(answered_with_proposal, tmp_path / "run")
    gold = base_run[1]
    config = run_dir / "config.yaml"
    text = config.read_text(encoding="utf-8")
    assert "    max_epochs: null\n    warm_start: false\n" in text
    config.write_text(text.replace("    max_epochs: null\n    warm_start: false\n", "    max_epochs: 1\n    warm_start: true\n"),
                      encoding="utf-8")
    store = RunStore(run_dir, overlap=True)
    try:
        view = store.view("c1", take=True)  # adopts batch 0's job (round 1's model); batch 1's first job trains on the committed labels
        assert view["mode"] == "item" and view["round"] == 1
        (first,) = list_jobs(run_dir)
        assert not first.intermediate and store.background.wait(240)
        log = "\n".join(first.log_tail(400))
        assert "warm start: from the run's round-1 model" in log and "epoch 2 of 2 trained" in log  # in full
        for _ in range(2):
            store.answer("c1", view["item"]["id"], gold[view["item"]["id"]], None, None)
            view = store.view("c1", take=True)
        second = list_jobs(run_dir)[-1]
        assert second.intermediate and second.answers == 2 and store.background.wait(240)
        log = "\n".join(second.log_tail(400))
        assert "warm start: from the run's round-1 model" in log and "epoch 1 of 1 trained" in log
        assert "epoch 2 of" not in log
    finally:
        store.stop()


def test_reading_starts_no_training_taking_an_item_does(run):
    run_dir, _ = run
    store = RunStore(run_dir, overlap=True)
    client = _page(store)
    try:
        assert client.get("/api/item", params={"client": "c1"}).status_code == 200
        assert client.get("/api/round").json()["state"] == "idle"
        assert list_jobs(run_dir) == [] and not (run_dir / "overlap").exists()  # a GET changes nothing
        _item(client)
        assert [job.round for job in list_jobs(run_dir)] == [0]
    finally:
        store.stop()


def test_what_a_front_end_does_after_a_tick():
    """``Tick.next``: the page and ``lit_al labelstudio watch`` read one tick the same way."""
    from lit_al.overlap import Adoption, BackgroundStatus, Tick

    running, failed = BackgroundStatus("running", "job_000002", 5, 3), BackgroundStatus("failed", message="killed")
    assert Tick(BackgroundStatus(), Adoption("adopted", 1, 6)).next == "adopted"
    assert Tick(BackgroundStatus(), Adoption("synchronous"), batch_done=True).next == "synchronous"
    assert Tick(running).next == "label" and Tick(failed).next == "label"  # answers are still to come
    assert Tick(running, batch_done=True).next == "wait"
    assert Tick(BackgroundStatus(), Adoption("busy", message="lit_al query holds the run"), batch_done=True).next == "wait"
    assert Tick(failed, batch_done=True).next == "failed"


def test_the_first_background_model_of_a_batch_is_the_synchronous_rounds_model(base_run, tmp_path):
    """Before any answer, a background job trains on the labels the synchronous round trains on, with
    that round's seeds: the same weights, so the two loops' learning curves pair exactly."""
    from safetensors.torch import load_file

    from lit_al.cli import main
    from lit_al.model import RUN_MODEL_WEIGHTS

    base, gold = base_run
    overlapped, synchronous = copy_run(base, tmp_path / "overlapped"), copy_run(base, tmp_path / "synchronous")
    store = RunStore(overlapped, overlap=True)
    client = _page(store)
    try:
        view = _item(client)  # nothing is labeled yet: the job that proposes batch 1 needs answers
        for _ in range(2):
            view = _answer(client, view["item"]["id"], gold[view["item"]["id"]])
        assert store.background.wait(240)
        view = _item(client)  # a job on the two answers
        assert store.background.wait(240)
        while view["mode"] == "item" and view["round"] == 0:
            view = _answer(client, view["item"]["id"], gold[view["item"]["id"]])
        assert view["mode"] == "item" and view["round"] == 1
        assert store.background.wait(240)  # batch 1's first job, on batch 0's answers
    finally:
        store.stop()
    (job,) = [job for job in list_jobs(overlapped) if job.round == 1 and job.answers == 0]

    answers = tmp_path / "answers.csv"
    with open(answers, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("id", "label")] + [(r["id"], gold[r["id"]][0]) for r in state(overlapped)["records"]])
    assert main(["label", str(synchronous), str(answers)]) == 0
    assert main(["query", "--resume", str(synchronous)]) == 0  # the synchronous round 1, on the same 8 labels
    assert job.labeled == len(state(synchronous)["records"]) == 8

    ours = load_file(job.directory / "model" / RUN_MODEL_WEIGHTS)
    theirs = load_file(synchronous / "model" / RUN_MODEL_WEIGHTS)
    assert ours.keys() == theirs.keys() and all(ours[name].equal(theirs[name]) for name in ours)
