"""The labeling page's API (Starlette's test client): serve, items, answers, undo, skips, leases, bad input, tokens, rounds."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the labeling page needs the 'annotate' extra (starlette, uvicorn)")
pytest.importorskip("httpx", reason="Starlette's test client needs httpx (the 'annotate' extra)")

from filelock import FileLock  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from annotate_runs import set_suggestions, state  # noqa: E402
from lit_al.annotate import RunStore, check_exposure, create_app  # noqa: E402
from lit_al.annotate.app import PAGE_HEADER  # noqa: E402
from lit_al.annotate.leases import Leases  # noqa: E402
from lit_al.annotate.rounds import RoundProgress, read_progress_line  # noqa: E402
from lit_al.errors import ConfigError  # noqa: E402
from lit_al.run_lock import LOCK_FILE  # noqa: E402



def page_secret(client: TestClient, **params) -> str:
    """The secret the page's HTML hands to its script (what every POST must carry)."""
    return re.search(r'<meta name="lit-al-page" content="([^"]+)">', client.get("/", params=params).text).group(1)


def _client(run_dir: Path, **kwargs) -> tuple[TestClient, RunStore]:
    """A client that sends what the page sends: the page's secret with every request."""
    token = kwargs.pop("token", None)
    kwargs.setdefault("overlap", False)  # the synchronous page; test_overlap.py tests the overlapped one
    store = RunStore(run_dir, **kwargs)
    client = TestClient(create_app(store, token=token))
    if token is None:
        client.headers[PAGE_HEADER] = page_secret(client)
    return client, store


def _item(client: TestClient, who: str = "c1", **extra) -> dict:
    """What the page does on load: take an item (a POST: it leases one)."""
    response = client.post("/api/take", json={"client": who, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def _answer(client: TestClient, who: str, example_id: str, labels=None, skip=None, **extra):
    body = {"client": who, "id": example_id, **extra}
    if labels is not None:
        body["labels"] = labels
    if skip is not None:
        body["skip"] = skip
    return client.post("/api/answer", json=body)


def test_page_and_assets_are_served(run):
    client, _ = _client(run[0])
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js">' in page.text and "{{" not in page.text
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert "innerHTML" not in client.get("/static/app.js").text  # data only ever goes in as text


def test_an_answer_is_recorded_with_annotator_and_time_and_the_next_item_follows(run):
    run_dir, gold = run
    client, _ = _client(run_dir, annotator="ana")
    view = _item(client)
    assert view["mode"] == "item" and view["task"]["labels"] == ["sport", "money", "tech"]
    assert view["progress"] == {"batch_answered": 0, "batch_size": 8, "labeled": 0, "skipped": 0, "pool_size": 40}
    first = view["item"]["id"]
    response = _answer(client, "c1", first, gold[first])
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["item"]["id"] != first and after["progress"]["batch_answered"] == 1 and after["can_undo"]
    (record,) = state(run_dir)["records"]
    assert record["id"] == first and record["labels"] == gold[first] and record["source"] == "person"
    assert record["annotator"] == "ana" and record["time"].endswith("+00:00") and record["round"] == 0
    _answer(client, "c1", after["item"]["id"], gold[after["item"]["id"]], annotator="bo")
    assert {r["annotator"] for r in state(run_dir)["records"]} == {"ana", "bo"}  # the page's name wins


def test_keyword_hits_are_highlighted(run):
    client, _ = _client(run[0])
    item = _item(client)["item"]
    spans = item["highlights"]
    assert spans and all(item["text"][a:b] in ("ball", "bank", "chip") for a, b in spans)


def test_the_same_answer_twice_changes_nothing(run):
    run_dir, gold = run
    client, _ = _client(run_dir)
    first = _item(client)["item"]["id"]
    assert _answer(client, "c1", first, gold[first]).status_code == 200
    before = (run_dir / "state.json").read_bytes()
    again = _answer(client, "c2", first, gold[first])  # a second tab, a retried request
    assert again.status_code == 200 and again.json()["unchanged"]
    assert (run_dir / "state.json").read_bytes() == before
    second = _item(client)["item"]["id"]
    assert _answer(client, "c1", second, skip="not sure").status_code == 200
    before = (run_dir / "state.json").read_bytes()
    assert _answer(client, "c1", second, skip="not sure").json()["unchanged"]
    assert (run_dir / "state.json").read_bytes() == before


def test_a_different_label_for_an_answered_item_is_refused(run):
    run_dir, gold = run
    client, _ = _client(run_dir)
    first = _item(client)["item"]["id"]
    _answer(client, "c1", first, gold[first])
    before = (run_dir / "state.json").read_bytes()
    other = next(name for name in ("sport", "money", "tech") if [name] != gold[first])
    response = _answer(client, "c2", first, [other])
    error = response.json()["error"]
    assert response.status_code == 400 and f"was labeled {gold[first]} before" in error
    assert error.endswith("; undo the first answer (Backspace, in the tab that gave it) and answer again to correct it")
    assert "--overwrite" not in error  # what to do on the page, not on the command line
    assert (run_dir / "state.json").read_bytes() == before


def test_an_answer_after_the_batch_was_committed_says_what_to_do_on_the_page(run):
    from lit_al.data.state import LabelState
    from lit_al.session import load_run_data

    run_dir, gold = run
    client, _ = _client(run_dir)
    shown = _item(client)["item"]["id"]
    label_state = LabelState.load(run_dir / "state.json", load_run_data(run_dir).pool.ids)
    label_state.pending = None  # what lit_al query in a terminal does when it commits the batch
    label_state.save()
    before = (run_dir / "state.json").read_bytes()
    response = _answer(client, "c1", shown, gold[shown])
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "no batch is pending: reload the page, then train and propose the next batch"
    assert (run_dir / "state.json").read_bytes() == before


def test_undo_takes_the_last_answer_back_and_shows_the_item_again(run):
    run_dir, gold = run
    client, _ = _client(run_dir)
    assert client.post("/api/undo", json={"client": "c1"}).json()["undone"] is None  # nothing to undo yet
    first = _item(client)["item"]["id"]
    _answer(client, "c1", first, gold[first])
    second = _item(client)["item"]["id"]
    _answer(client, "c1", second, skip="skip")
    assert [r["id"] for r in state(run_dir)["skipped"]] == [second]
    undone = client.post("/api/undo", json={"client": "c1"}).json()
    assert undone["undone"] == second and undone["item"]["id"] == second and state(run_dir)["skipped"] == []
    undone = client.post("/api/undo", json={"client": "c1"}).json()
    assert undone["undone"] == first and undone["item"]["id"] == first and state(run_dir)["records"] == []
    assert not undone["can_undo"]


def test_concurrent_answers_to_one_item_record_it_once(run):
    run_dir, gold = run
    client, _ = _client(run_dir)
    first = _item(client)["item"]["id"]
    other = next(name for name in ("sport", "money", "tech") if [name] != gold[first])
    answers = [gold[first]] * 6 + [[other]] * 2
    results: list = [None] * len(answers)

    def send(k: int) -> None:
        results[k] = _answer(client, f"tab{k}", first, answers[k])

    threads = [threading.Thread(target=send, args=(k,)) for k in range(len(answers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = state(run_dir)["records"]
    assert len(records) == 1 and records[0]["id"] == first
    winner = records[0]["labels"]
    codes = [r.status_code for r in results]
    assert all(code == 200 for code, labels in zip(codes, answers) if labels == winner)
    assert all(code == 400 for code, labels in zip(codes, answers) if labels != winner)
    assert sum(not r.json().get("unchanged", True) for r in results if r.status_code == 200) == 1


def test_two_clients_get_different_items_until_answered_released_or_expired(run):
    run_dir, gold = run
    now = [0.0]
    client, store = _client(run_dir, lease_seconds=60, clock=lambda: now[0])
    a, b = _item(client, "a")["item"]["id"], _item(client, "b")["item"]["id"]
    assert a != b
    assert _item(client, "a")["item"]["id"] == a  # a reload keeps its item
    assert client.post("/api/release", json={"client": "a"}).json()["released"]
    assert _item(client, "c")["item"]["id"] == a  # released: the next client takes it
    now[0] = 61.0  # every lease expired
    assert _item(client, "d")["item"]["id"] == a
    _answer(client, "d", a, gold[a])
    assert _item(client, "e")["item"]["id"] not in (a,)


def test_items_held_by_others_are_not_served(run):
    run_dir, gold = run
    client, _ = _client(run_dir)
    held = {_item(client, f"c{k}")["item"]["id"] for k in range(8)}
    assert len(held) == 8  # the whole batch, one item each
    view = _item(client, "late")
    assert view["mode"] == "waiting" and view["message"] == "the 8 items left are with other annotators; wait or come back later"
    assert view["reclaimable"] == 0
    gold = run[1]
    for k in range(7):
        item = _item(client, f"c{k}")["item"]["id"]
        _answer(client, f"c{k}", item, gold[item])
    assert _item(client, "late")["message"] == "the 1 item left is with another annotator; wait or come back later"


def test_reading_leases_nothing_and_taking_does(run):
    client, _ = _client(run[0])
    for k in range(10):  # what ten cross-site GETs with fresh client ids did: hold every item for ten minutes
        view = client.get("/api/item", params={"client": f"reader{k}"}).json()
        assert view["mode"] == "open" and view["message"] == "8 items to label: take one (POST /api/take)"
    taken = {_item(client, f"c{k}")["item"]["id"] for k in range(8)}
    assert len(taken) == 8  # every item was still free
    held = client.get("/api/item", params={"client": "c0"}).json()
    assert held["mode"] == "item" and held["item"]["id"] in taken  # a reload shows the item it holds
    assert client.get("/api/item", params={"client": "reader0"}).json()["mode"] == "waiting"


def test_a_crashed_tabs_item_is_taken_back_by_its_annotator_only(run):
    client, store = _client(run[0], annotator=None)
    for k in range(7):
        _item(client, f"bo{k}", annotator="bo")
    crashed = _item(client, "ana-tab1", annotator="ana")["item"]["id"]  # this tab crashes: no release comes
    view = _item(client, "ana-tab2", annotator="ana")
    assert view["mode"] == "waiting" and view["reclaimable"] == 1
    assert "1 item under your name 'ana' in another tab (closed or crashed?): take it back" in view["message"]
    for who, name in (("cy-tab", "cy"), ("anon-tab", None)):  # another name, or none, takes nothing back
        refused = _item(client, who, annotator=name, reclaim=True)
        assert refused["mode"] == "waiting" and refused["reclaimable"] == 0
    assert store.leases.holder(crashed) == "ana-tab1"
    back = _item(client, "ana-tab2", annotator="ana", reclaim=True)
    assert back["mode"] == "item" and back["item"]["id"] == crashed and store.leases.holder(crashed) == "ana-tab2"
    assert client.post("/api/take", json={"client": "x", "reclaim": "yes"}).status_code == 400


def test_leases_alone():
    now = [0.0]
    leases = Leases(10, clock=lambda: now[0])
    assert leases.acquire("a", ["x", "y"]) == "x" and leases.acquire("b", ["x", "y"]) == "y"
    assert leases.acquire("c", ["x", "y"]) is None and leases.holder("x") == "a"
    leases.take("b", "x")  # an undo brings an item back to whoever undid it
    assert leases.holder("x") == "b" and leases.holder("y") is None
    now[0] = 11
    assert leases.holder("x") is None and leases.acquire("c", ["x", "y"]) == "x"


@pytest.mark.parametrize("body,fragment", [
    ("not json", "body: not JSON"),
    ([1, 2], "body: a JSON object is required"),
    ({"id": "{id}", "labels": ["sport"]}, "client: a non-empty string is required"),
    ({"client": "c1", "labels": ["sport"]}, "id: a non-empty string is required"),
    ({"client": "c1", "id": 7, "labels": ["sport"]}, "id: a non-empty string is required"),
    ({"client": "c1", "id": "{id}"}, "labels/skip: give exactly one"),
    ({"client": "c1", "id": "{id}", "labels": ["sport"], "skip": "skip"}, "labels/skip: give exactly one"),
    ({"client": "c1", "id": "{id}", "labels": "sport"}, "labels: a list of label names"),
    ({"client": "c1", "id": "{id}", "labels": ["golf"]}, "label 'golf' is not in the label schema"),
    ({"client": "c1", "id": "{id}", "labels": ["sport", "tech"]}, "2 labels ['sport', 'tech'] in a single-label task"),
    ({"client": "c1", "id": "{id}", "labels": []}, "empty label"),
    ({"client": "c1", "id": "{id}", "skip": "maybe"}, "skip: 'maybe' is not one of"),
    ({"client": "c1", "id": "nope", "labels": ["sport"]}, "id: unknown id 'nope'"),
    ({"client": "c1", "id": "{other}", "labels": ["sport"]}, "is not in the pending batch"),
    ({"client": "x" * 300, "id": "{id}", "labels": ["sport"]}, "client: longer than 200 characters"),
])
def test_malformed_answers_are_400_with_a_message_and_write_nothing(run, body, fragment):
    run_dir, _ = run
    client, _ = _client(run_dir)
    example_id = _item(client)["item"]["id"]
    pending = set(state(run_dir)["pending"]["pool_indices"])
    other = next(f"pool-{i}" for i in range(40) if i not in pending)  # pool-i is at pool index i
    before = (run_dir / "state.json").read_bytes()
    if isinstance(body, dict):
        body = {k: v.format(id=example_id, other=other) if isinstance(v, str) else v for k, v in body.items()}
        response = client.post("/api/answer", json=body)
    elif isinstance(body, str):
        response = client.post("/api/answer", content=body, headers={"content-type": "application/json"})
    else:
        response = client.post("/api/answer", json=body)
    assert response.status_code == 400 and fragment.format(id=example_id) in response.json()["error"], response.text
    assert (run_dir / "state.json").read_bytes() == before


def test_other_malformed_requests(run):
    client, _ = _client(run[0])
    assert client.get("/api/item").status_code == 400 and "client" in client.get("/api/item").json()["error"]
    assert client.get("/api/take").status_code == 405  # taking an item changes what others see: POST only
    assert client.post("/api/undo", json={}).status_code == 400
    assert client.get("/api/answer").status_code == 405
    assert client.get("/nothing").status_code == 404 and client.get("/nothing").json()["error"] == "/nothing: Not Found"


def test_only_json_bodies_and_only_loopback_host_names_are_served(run):
    from lit_al.annotate.server import allowed_hosts

    run_dir, gold = run
    client, _ = _client(run_dir)
    example_id = _item(client)["item"]["id"]
    before = (run_dir / "state.json").read_bytes()
    body = '{"client": "c1", "id": "%s", "labels": ["sport"]}' % example_id
    response = client.post("/api/answer", content=body, headers={"content-type": "text/plain"})  # a cross-site form
    assert response.status_code == 415 and "content-type: send the body as application/json" in response.json()["error"]
    assert (run_dir / "state.json").read_bytes() == before
    assert allowed_hosts("127.0.0.1") == ["127.0.0.1", "::1", "localhost"] and allowed_hosts("0.0.0.0") is None
    guarded = TestClient(create_app(RunStore(run_dir), allowed_hosts=allowed_hosts("127.0.0.1")))
    assert guarded.get("/").status_code == 400  # Host: testserver (a rebound DNS name)
    assert guarded.get("/", headers={"host": "127.0.0.1:8080"}).status_code == 200


def test_answers_are_refused_while_another_process_holds_the_run(run):
    run_dir, gold = run
    client, _ = _client(run_dir)
    first = _item(client)["item"]["id"]
    before = (run_dir / "state.json").read_bytes()
    with FileLock(str(run_dir / LOCK_FILE)).acquire(timeout=0):  # what a training lit_al query holds
        response = _answer(client, "c1", first, gold[first])
    assert response.status_code == 409 and "another lit_al process" in response.json()["error"]
    assert (run_dir / "state.json").read_bytes() == before


def test_a_token_is_required_when_given_and_off_loopback(run):
    client, _ = _client(run[0], token="s3cret-token")
    assert client.get("/").status_code == 401 and "token" in client.get("/").json()["error"]
    assert client.get("/static/app.js").status_code == 401
    assert client.get("/api/item", params={"client": "c", "token": "wrong-token"}).status_code == 401
    page = client.get("/", params={"token": "s3cret-token"})
    assert page.status_code == 200 and "/static/app.js?token=s3cret-token" in page.text
    assert client.get("/api/item", params={"client": "c"}, headers={"X-Lit-Al-Token": "s3cret-token"}).status_code == 200
    secret = page_secret(client, token="s3cret-token")
    take = client.post("/api/take", json={"client": "c"}, headers={"X-Lit-Al-Token": "s3cret-token", PAGE_HEADER: secret})
    assert take.status_code == 200 and take.json()["mode"] == "item"  # a POST needs the token and the page's secret
    assert client.post("/api/take", json={"client": "c"}, headers={PAGE_HEADER: secret}).status_code == 401
    assert client.post("/api/take", json={"client": "c"}, headers={"X-Lit-Al-Token": "s3cret-token"}).status_code == 403
    assert check_exposure("127.0.0.1", None).token is None and check_exposure("localhost", None).token is None
    exposed = check_exposure("0.0.0.0", None)
    assert exposed.generated and len(exposed.token) >= 24
    assert check_exposure("192.168.1.5", "chosen-token").token == "chosen-token"
    with pytest.raises(ConfigError, match="--token"):
        check_exposure("0.0.0.0", "<bad>")


def test_round_progress_is_read_from_the_log_lines():
    progress = RoundProgress(state="running")
    for line in ("INFO lit_al.loop: round 1: training on 8 labels", "INFO lit_al.callbacks: epoch 1 of 2 trained"):
        progress = read_progress_line(progress, line)
    assert (progress.phase, progress.epoch, progress.max_epochs) == ("training", 1, 2)
    progress = read_progress_line(progress, "INFO lit_al.loop: round 1: scoring 32 unlabeled texts")
    assert progress.phase == "scoring" and progress.message == "round 1: scoring 32 unlabeled texts"
    assert read_progress_line(progress, "something else") == progress


def test_the_next_round_starts_from_the_page_and_brings_the_next_batch(run):
    run_dir, gold = run
    client, store = _client(run_dir)
    assert client.post("/api/round", json={}).status_code == 409  # nothing answered yet
    while (view := _item(client))["mode"] == "item":
        _answer(client, "c1", view["item"]["id"], gold[view["item"]["id"]])
    assert view["mode"] == "batch_done" and view["progress"]["batch_answered"] == 8
    assert client.post("/api/round", json={}).status_code == 202
    assert client.post("/api/round", json={}).status_code == 409  # one round at a time
    assert _item(client)["mode"] == "training"
    labeled = state(run_dir)["records"][0]  # answering it anew can never write: another label is refused
    wrong = [next(name for name in ("sport", "money", "tech") if [name] != labeled["labels"])]
    phases, refusals = set(), 0
    deadline = time.monotonic() + 300
    while (progress := client.get("/api/round").json())["state"] == "running":
        phases.add(progress["phase"])
        refused = _answer(client, "c1", labeled["id"], wrong)
        if refused.status_code == 409:
            assert "a round is training" in refused.json()["error"]
            refusals += 1
        else:  # the round ended between the two requests
            assert refused.status_code == 400 and not store.runner.running
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert progress["state"] == "done", progress
    assert refusals >= 1 and phases <= {"starting", "training", "scoring", "selecting"}
    log = "\n".join(progress["log"])
    for line in ("round 1: training on 8 labels", "epoch 2 of 2 trained", "round 1: scoring 32 unlabeled texts",
                 "round 1: selecting 6 with entropy"):
        assert line in log
    view = _item(client)
    assert view["mode"] == "item" and view["round"] == 1 and view["progress"]["batch_size"] == 6
    assert view["item"]["suggestion"] and 0 < view["item"]["confidence"] <= 1
    assert view["item"]["highlights"] == []  # no keyword query in this batch
    assert state(run_dir)["completed_rounds"] == 1 and len(state(run_dir)["records"]) == 8


def test_the_command_off_loopback_prints_a_token_and_every_request_needs_it(run, tmp_path):
    import os
    import socket
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "lit_al.cli", "annotate", str(run[0]), "--host", "0.0.0.0", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        assert "every request must carry this token" in lines[0], lines
        token = lines[0].rsplit(": ", 1)[1].strip()
        assert f"http://127.0.0.1:{port}/?token={token}" in lines[1]
        with pytest.raises(urllib.error.HTTPError) as refused:  # the port listens from the start: this waits
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=240)
        assert refused.value.code == 401
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={token}", timeout=5) as page:
            assert page.status == 200 and f"app.js?token={token}" in page.read().decode()
    finally:
        process.terminate()
        code = process.wait(timeout=30)
    assert code == 0 and "labeling page stopped" in process.stdout.read()  # SIGTERM / Ctrl-C is how it stops


def test_the_command_refuses_a_folder_that_is_not_a_run_and_a_bad_token(tmp_path, run, capsys):
    from lit_al.cli import main

    assert main(["annotate", str(tmp_path / "nothing")]) == 1
    assert "not a lit_al run (no state.json)" in capsys.readouterr().err
    assert main(["annotate", str(run[0]), "--host", "0.0.0.0", "--token", "short"]) == 1
    assert "--token: 8 to 200 characters" in capsys.readouterr().err
    assert main(["annotate", str(run[0]), "--annotator", "ana\udcff"]) == 1
    assert capsys.readouterr().err.strip() == ("lit_al: error: --annotator: character 4 ('\\udcff') is not printable; "
                                               "a name holds letters, digits, marks, symbols and spaces")


def test_an_oversized_body_is_refused(run):
    client, _ = _client(run[0])
    before = (run[0] / "state.json").read_bytes()
    response = client.post("/api/answer", content=b"{" + b" " * (2 << 20) + b"}", headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "body: larger than 64 KiB"
    assert (run[0] / "state.json").read_bytes() == before


def test_the_same_skip_mark_again_keeps_its_time(run):
    """Idempotent at the source: ``apply_answers`` leaves an identical skip mark as it was (the page and lit_al label)."""
    from lit_al.labeling import Answer, apply_answers
    from lit_al.session import load_run_state

    data, label_state = load_run_state(run[0])
    first = data.pool.ids[label_state.pending.pool_indices[0]]
    summary = apply_answers(label_state, data.schema, [Answer(first, None, "not sure")], time="2026-01-01T00:00:00+00:00")
    assert summary.skipped == 1
    again = apply_answers(label_state, data.schema, [Answer(first, None, "not sure")], time="2026-01-02T00:00:00+00:00")
    assert again.skipped == 0 and again.unchanged == 1
    assert label_state.skipped[label_state.pending.pool_indices[0]].time == "2026-01-01T00:00:00+00:00"
    other = apply_answers(label_state, data.schema, [Answer(first, None, "skip")], time="2026-01-03T00:00:00+00:00")
    assert other.skipped == 1 and label_state.skipped[label_state.pending.pool_indices[0]].reason == "skip"


def test_a_failed_round_says_why(tmp_path):
    import sys

    from lit_al.annotate.rounds import RoundRunner

    runner = RoundRunner(tmp_path, command=[sys.executable, "-c",
                                            "import sys; print('INFO lit_al.loop: round 1: training on 8 labels'); "
                                            "print('lit_al: error: another lit_al process is working on this run'); sys.exit(1)"])
    assert runner.start()
    deadline = time.monotonic() + 60
    while runner.running:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    progress = runner.progress()
    assert progress.state == "failed" and progress.phase == "training"
    assert progress.message == "the round stopped (exit status 1): lit_al: error: another lit_al process is working on this run"


# ---------------------------------------------------------------- requests another site's page could send
#: (what is wrong with the request, headers it sends instead of the page's, its body, status, message).
#: A page of another site can send a form (urlencoded, multipart, text/plain) without asking, and a
#: fetch with any body; it cannot read the page's secret, and its browser says where it comes from.
FOREIGN_REQUESTS = [
    ("a text/plain form", {"content-type": "text/plain"}, '{"client": "c1"}', 415, "content-type: send the body as application/json"),
    ("an urlencoded form", {"content-type": "application/x-www-form-urlencoded"}, "client=c1", 415, "content-type"),
    ("no content type", {"content-type": ""}, '{"client": "c1"}', 415, "content-type"),
    ("another origin", {"origin": "http://evil.example"}, "{}", 403, "origin: 'http://evil.example' is another site"),
    ("another port of this host", {"origin": "http://testserver:9999"}, "{}", 403, "origin: 'http://testserver:9999'"),
    ("an opaque origin", {"origin": "null"}, "{}", 403, "origin: 'null' is another site"),
    ("a cross-site fetch", {"sec-fetch-site": "cross-site"}, "{}", 403, "sec-fetch-site: 'cross-site'"),
    ("a same-site fetch", {"sec-fetch-site": "same-site"}, "{}", 403, "sec-fetch-site: 'same-site'"),
    ("no page secret", {PAGE_HEADER: ""}, "{}", 403, "x-lit-al-page: missing or out of date: reload the page"),
    ("a wrong page secret", {PAGE_HEADER: "guessed"}, "{}", 403, "x-lit-al-page: missing or out of date"),
]
STATE_CHANGING = [("/api/round", {}), ("/api/answer", {"client": "c1", "id": "{id}", "labels": ["{label}"]}),
                  ("/api/undo", {"client": "c1"}), ("/api/release", {"client": "c1"}), ("/api/take", {"client": "c9"})]


@pytest.mark.parametrize("path,body", STATE_CHANGING, ids=[p for p, _ in STATE_CHANGING])
@pytest.mark.parametrize("what,headers,raw,status,fragment", FOREIGN_REQUESTS, ids=[r[0] for r in FOREIGN_REQUESTS])
def test_every_state_changing_route_refuses_what_another_site_could_send(run, path, body, what, headers, raw, status,
                                                                        fragment):
    import json
    import sys

    from lit_al.annotate.rounds import RoundRunner

    run_dir, gold = run
    runner = RoundRunner(run_dir, command=[sys.executable, "-c", "pass"])  # a round that would start, not train
    client, store = _client(run_dir, runner=runner)
    example_id = _item(client, "c1")["item"]["id"]
    _answer(client, "c1", example_id, gold[example_id])  # something to undo, and a round that may start
    held = {item: store.leases.holder(item) for item in store.ids}
    before = (run_dir / "state.json").read_bytes()
    if raw == "{}" and body:  # the request's own body, in JSON
        raw = json.dumps({k: v.format(id=example_id, label=gold[example_id][0]) if isinstance(v, str) else v
                          for k, v in body.items()})
    sent = {k: v for k, v in {"content-type": "application/json", **headers}.items() if v}
    if PAGE_HEADER in headers:  # instead of the page's secret
        client.headers[PAGE_HEADER] = sent.pop(PAGE_HEADER, "")
    response = client.post(path, content=raw.encode(), headers=sent)
    assert response.status_code == status and fragment in response.json()["error"], response.text
    assert (run_dir / "state.json").read_bytes() == before  # nothing written
    assert runner.progress().state == "idle"  # no round started
    assert {item: store.leases.holder(item) for item in store.ids} == held  # no lease taken or given back


def test_the_page_itself_passes_every_check(run):
    """The control of the table above: the same requests, as the page sends them (JSON, same origin, secret)."""
    import sys

    from lit_al.annotate.rounds import RoundRunner

    run_dir, gold = run
    runner = RoundRunner(run_dir, command=[sys.executable, "-c", "pass"])
    client, _ = _client(run_dir, runner=runner)
    same_origin = {"origin": "http://testserver", "sec-fetch-site": "same-origin"}
    example_id = client.post("/api/take", json={"client": "c1"}, headers=same_origin).json()["item"]["id"]
    assert client.post("/api/answer", json={"client": "c1", "id": example_id, "labels": gold[example_id]},
                       headers=same_origin).status_code == 200
    assert client.post("/api/undo", json={"client": "c1"}, headers=same_origin).json()["undone"] == example_id
    assert client.post("/api/release", json={"client": "c1"}, headers=same_origin).json()["released"]
    _answer(client, "c1", example_id, gold[example_id])
    assert client.post("/api/round", json={}, headers=same_origin).status_code == 202


# ---------------------------------------------------------------- names and bodies that broke the server
DEEP = '{"client": ' + "[" * 30_000 + "]" * 30_000 + "}"  # under the 64 KiB limit
BAD_FIELDS = [
    ("a lone surrogate annotator", '{"client": "c1", "id": "{id}", "labels": ["sport"], "annotator": "\\ud800"}',
     "annotator: character 1 ('\\ud800') is not printable"),
    ("a lone surrogate client", '{"client": "a\\udfffb", "id": "{id}", "labels": ["sport"]}',
     "client: character 2 ('\\udfff') is not printable"),
    ("an annotator with a line break", '{"client": "c1", "id": "{id}", "labels": ["sport"], "annotator": "ana\\nbo"}',
     "annotator: character 4 ('\\n') is not printable"),
    ("a 101-character annotator", '{"client": "c1", "id": "{id}", "labels": ["sport"], "annotator": "' + "a" * 101 + '"}',
     "annotator: longer than 100 characters"),
    ("a blank annotator", '{"client": "c1", "id": "{id}", "labels": ["sport"], "annotator": "  "}',
     "annotator: a non-empty string is required"),
    ("a lone surrogate id", '{"client": "c1", "id": "\\ud800", "labels": ["sport"]}', "unknown id '\\ud800'"),
    ("a lone surrogate label", '{"client": "c1", "id": "{id}", "labels": ["\\ud800"]}', "label '\\ud800' is not in"),
    ("JSON nested 30,000 deep", DEEP, "body: nested too deeply"),
]


@pytest.mark.parametrize("what,raw,fragment", BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_bad_names_and_deep_bodies_are_400_and_write_nothing(run, what, raw, fragment):
    run_dir, _ = run
    client, _ = _client(run_dir)
    example_id = _item(client)["item"]["id"]
    before = (run_dir / "state.json").read_bytes()
    response = client.post("/api/answer", content=raw.replace("{id}", example_id).encode(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 400 and fragment in response.json()["error"], response.text
    assert (run_dir / "state.json").read_bytes() == before
    if "annotator" in what or "client" in what:  # the same names are refused where an item is taken
        take = client.post("/api/take", content=raw.replace('"id": "{id}", ', "").encode(),
                           headers={"content-type": "application/json"})
        assert take.status_code == 400 and fragment in take.json()["error"]


def test_label_refuses_a_bad_annotator_in_one_line(run, tmp_path, capsys):
    from lit_al.cli import main

    run_dir, gold = run
    ids = [f"pool-{i}" for i in state(run_dir)["pending"]["pool_indices"]]
    answers = tmp_path / "answers.csv"
    answers.write_text("id,label\n" + "".join(f"{i},{gold[i][0]}\n" for i in ids[:2]), encoding="utf-8")
    before = (run_dir / "state.json").read_bytes()
    for name, fragment in (("\udcff", "character 1 ('\\udcff') is not printable"), ("a\tb", "character 2 ('\\t')")):
        assert main(["label", str(run_dir), str(answers), "--annotator", name]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("lit_al: error: --annotator: ") and fragment in err[0], err
    assert (run_dir / "state.json").read_bytes() == before


# ---------------------------------------------------------------- host names (DNS rebinding)
#: (the address bound, the Host header a browser sends, served?)
HOSTS = [
    ("127.0.0.1", "127.0.0.1:8080", True), ("127.0.0.1", "localhost:8080", True), ("127.0.0.1", "[::1]:8080", True),
    ("127.0.0.1", "rebound.example:8080", False), ("127.0.0.1", "127.0.0.1.rebound.example", False),
    ("127.0.0.2", "127.0.0.2:8080", True), ("127.0.0.2", "rebound.example:8080", False),
    ("::1", "[::1]:8080", True), ("::1", "localhost:8080", True), ("::1", "rebound.example:8080", False),
    ("::1", "[::1", False), ("::1", "", False),
    ("0:0:0:0:0:0:0:1", "[::1]:8080", True), ("localhost", "localhost:8080", True), ("localhost", "evil.example", False),
]


@pytest.mark.parametrize("bound,host,served", HOSTS)
def test_a_loopback_page_answers_to_loopback_names_only(run, bound, host, served):
    from lit_al.annotate.server import allowed_hosts

    client = TestClient(create_app(RunStore(run[0]), allowed_hosts=allowed_hosts(bound)))
    response = client.get("/", headers={"host": host})
    assert response.status_code == (200 if served else 400), response.text
    if not served:
        assert response.json()["error"].startswith(f"host: {host!r} is not served here")


@pytest.mark.parametrize("bound", ["::1", "127.0.0.2"])
def test_the_command_serves_its_own_printed_address_and_refuses_rebound_names(run, bound):
    """A real ``lit_al annotate`` on loopback IPv6 and on 127.0.0.2: its printed address works, a rebound name does not."""
    import socket
    import urllib.error
    import urllib.request

    family = socket.AF_INET6 if ":" in bound else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((bound, 0))
        port = probe.getsockname()[1]
    process = _annotate_process(run[0], "--host", bound, "--port", str(port))
    try:
        line = process.stdout.readline()
        url = re.search(r"(http://\S+)", line).group(1)
        assert url == (f"http://[{bound}]:{port}/" if ":" in bound else f"http://{bound}:{port}/"), line
        with urllib.request.urlopen(url, timeout=240) as page:
            assert page.status == 200
        request = urllib.request.Request(url, headers={"Host": f"rebound.example:{port}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 400
    finally:
        process.terminate()
        process.wait(timeout=60)


def _annotate_process(run_dir: Path, *options: str):
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "lit_al.cli", "annotate", str(run_dir), *options]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# ---------------------------------------------------------------- starting the command
def test_a_busy_port_is_one_line_and_exit_1(run, capsys):
    import socket

    from lit_al.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["annotate", str(run[0]), "--port", str(port)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == (f"lit_al: error: --port {port}: the port is in use on 127.0.0.1 "
                                         "(another lit_al annotate?); stop it or choose another --port")


@pytest.mark.parametrize("host,fragment", [
    ("203.0.113.7", "--host 203.0.113.7: not an address of this machine"),  # TEST-NET-3: never this machine's
    ("no-such-host.invalid", "--host no-such-host.invalid: not an address of this machine"),
])
def test_an_address_that_cannot_be_bound_is_one_line(host, fragment):
    from lit_al.annotate.server import listen

    with pytest.raises(ConfigError) as refused:
        listen(host, 0)
    assert str(refused.value).startswith(fragment) and "\n" not in str(refused.value)


def test_the_address_is_printed_before_the_page_is_ready_and_a_browser_waits_for_it(run):
    """Before: nothing for seconds (the app's imports), then the address. Now: the address at once; a request
    sent at once waits in the listening socket's backlog until the page is ready, and is served."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = _annotate_process(run[0], "--port", str(port))
    try:
        line = process.stdout.readline()
        printed = time.monotonic()
        assert f"http://127.0.0.1:{port}/" in line, line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=240) as page:
            assert page.status == 200
        # the app's imports (Starlette, the run's data module, torch) take seconds anywhere: the
        # address came before them, not after
        assert time.monotonic() - printed > 1.0
    finally:
        process.terminate()
        process.wait(timeout=60)


# ---------------------------------------------------------------- suggestions near chance
@pytest.mark.parametrize("confidence,n_labels,multi,low", [
    (0.55, 2, False, True), (0.62, 2, False, True), (0.63, 2, False, False), (0.99, 2, False, False),
    (0.34, 3, False, True), (0.49, 3, False, True), (0.51, 3, False, False),
    (0.37, 6, False, True), (0.38, 6, False, False),
    (0.55, 4, True, True), (0.62, 4, True, True), (0.7, 4, True, False),
])
def test_a_suggestion_near_chance_is_low_confidence(confidence, n_labels, multi, low):
    from lit_al.annotate.store import is_low_confidence

    assert is_low_confidence(confidence, n_labels, multi) is low


def test_the_api_marks_low_confidence_suggestions(run):
    set_suggestions(run[0], {0: (("sport",), 0.40), 1: (("money",), 0.93)})
    client, _ = _client(run[0])
    first = _item(client, "a")["item"]
    second = _item(client, "b")["item"]
    assert (first["confidence"], first["low_confidence"]) == (0.4, True)
    assert (second["confidence"], second["low_confidence"]) == (0.93, False)
