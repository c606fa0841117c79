"""The labeling page in a real browser: headless Debian chromium driven by Playwright (never a downloaded browser).

Each test serves a copy of a run (``annotate.server.serving``: uvicorn on a free local port), works the page with
the keyboard like a person would, and asserts on ``state.json``.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import shutil
import threading
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the labeling page needs the 'annotate' extra (starlette, uvicorn)")
pytest.importorskip("uvicorn", reason="the labeling page needs the 'annotate' extra (starlette, uvicorn)")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright's Python package (dev extra)")

from annotate_runs import LABELS, copy_run, make_run, set_suggestions, state  # noqa: E402
from lit_al.annotate.server import serving  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
KEYS = "123456789abcdefghijklmnopqrstuvwxyz"
#: Root in a container needs --no-sandbox; the rest keeps chromium off the network and quiet.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SCRIPT_TEXT = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> script about a ball'


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (Debian's chromium package: scripts/setup.sh installs it when apt works)")
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:  # a chromium this playwright cannot drive
            pytest.skip(f"chromium at {CHROMIUM} does not start under playwright: {str(exc).splitlines()[0]}")
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def single(tmp_path_factory, tiny_bert):
    return make_run(tmp_path_factory.mktemp("single"), tiny_bert)


@pytest.fixture(scope="module")
def multi(tmp_path_factory, tiny_bert):
    return make_run(tmp_path_factory.mktemp("multi"), tiny_bert, multi_label=True, n=4)


def _shown_id(page) -> str:
    return page.locator("#item-id").inner_text().removeprefix("id ")


def _key_of(label: str) -> str:
    return KEYS[LABELS.index(label)]


def _label_current(page, gold, done: int, total: int) -> str:
    """Answer the item on screen with its gold label by keyboard; the id answered."""
    example_id = _shown_id(page)
    page.keyboard.press(_key_of(gold[example_id][0]))
    sync_api.expect(page.locator("#batch-count")).to_have_text(f"{done + 1} / {total}")
    return example_id


def test_the_overlapped_page_shows_the_next_batch_after_the_last_answer_without_a_click(single, tmp_path, page):
    run_dir = copy_run(single[0], tmp_path / "run")
    gold = single[1]
    with serving(run_dir) as url:  # loop.overlap.enabled (the default): trained in the background meanwhile
        page.goto(url)
        page.locator("#text").click()
        sync_api.expect(page.locator("#batch-count")).to_have_text("0 / 8")
        for k in range(7):
            _label_current(page, gold, k, 8)
        page.keyboard.press(_key_of(gold[_shown_id(page)][0]))
        # at once when a background batch is ready, else when the running training is done
        sync_api.expect(page.locator("#position")).to_have_text("item 1 of 6 · round 1", timeout=240_000)
        sync_api.expect(page.locator("#batch-count")).to_have_text("0 / 6")
        sync_api.expect(page.locator("#train")).to_be_hidden()
    saved = state(run_dir)
    assert saved["completed_rounds"] == 1 and saved["proposed_by"]["1"]["overlap"] is True and len(saved["records"]) == 8


def test_label_a_whole_batch_with_the_keyboard_then_train_the_next_round(single, tmp_path, page):
    run_dir = copy_run(single[0], tmp_path / "run")
    gold = single[1]
    with serving(run_dir, overlap=False) as url:
        page.goto(url)
        page.locator("#annotator").fill("ana")
        page.locator("#annotator").press("Tab")  # the name is kept for the next answers
        page.locator("#text").click()  # keys go to the page, not the name field
        sync_api.expect(page.locator("#batch-count")).to_have_text("0 / 8")
        sync_api.expect(page.locator("#labels button")).to_have_count(3)
        answered = [_label_current(page, gold, k, 8) for k in range(8)]
        sync_api.expect(page.locator("#train")).to_be_visible()
        sync_api.expect(page.locator("#card")).to_be_hidden()
        records = state(run_dir)["records"]
        assert sorted(r["id"] for r in records) == sorted(answered) and len(set(answered)) == 8
        assert all(r["labels"] == gold[r["id"]] and r["source"] == "person" and r["annotator"] == "ana" for r in records)

        page.locator("#train").click()  # the next round, from the page
        sync_api.expect(page.locator("#round")).to_be_visible()
        sync_api.expect(page.locator("#position")).to_have_text("item 1 of 6 · round 1", timeout=240_000)
        # the tiny model is near chance: its suggestion is shown as a guess (a confident one: "model suggests")
        sync_api.expect(page.locator("#suggestion")).to_contain_text(re.compile("model suggests|the model is unsure"))
        sync_api.expect(page.locator("#batch-count")).to_have_text("0 / 6")
        sync_api.expect(page.locator("#total-count")).to_have_text("8 / 40")
    assert state(run_dir)["completed_rounds"] == 1 and len(state(run_dir)["pending"]["pool_indices"]) == 6


def test_undo_and_a_reload_mid_batch_lose_and_duplicate_nothing(single, tmp_path, page):
    run_dir = copy_run(single[0], tmp_path / "run")
    gold = single[1]
    with serving(run_dir, overlap=False) as url:
        page.goto(url)
        sync_api.expect(page.locator("#batch-count")).to_have_text("0 / 8")
        first = [_label_current(page, gold, k, 8) for k in range(3)]
        shown = _shown_id(page)
        page.keyboard.press("Backspace")  # undo the third answer: it comes back
        sync_api.expect(page.locator("#batch-count")).to_have_text("2 / 8")
        sync_api.expect(page.locator("#item-id")).to_have_text(f"id {first[2]}")
        assert sorted(r["id"] for r in state(run_dir)["records"]) == sorted(first[:2]) and shown != first[2]
        page.reload()
        sync_api.expect(page.locator("#item-id")).to_have_text(f"id {first[2]}")  # the same item after a reload
        sync_api.expect(page.locator("#batch-count")).to_have_text("2 / 8")
        sync_api.expect(page.locator("#undo")).to_be_enabled()  # the history outlives the reload
        rest = [_label_current(page, gold, k, 8) for k in range(2, 8)]
        page.reload()
        sync_api.expect(page.locator("#batch-count")).to_have_text("8 / 8")
        sync_api.expect(page.locator("#train")).to_be_visible()
    records = state(run_dir)["records"]
    assert len(records) == 8 and {r["id"] for r in records} == set(first[:2] + rest)
    assert all(r["labels"] == gold[r["id"]] for r in records)


def test_multi_label_toggles_then_accept(multi, tmp_path, page):
    run_dir = copy_run(multi[0], tmp_path / "run")
    gold = multi[1]
    with serving(run_dir, overlap=False) as url:
        page.goto(url)
        sync_api.expect(page.locator("#accept")).to_be_visible()
        for k in range(4):
            sync_api.expect(page.locator("#batch-count")).to_have_text(f"{k} / 4")
            example_id = _shown_id(page)
            wrong = next(name for name in LABELS if name not in gold[example_id])
            page.keyboard.press(_key_of(wrong))  # on, then off again
            sync_api.expect(page.locator(f'#labels button[data-label="{wrong}"]')).to_have_attribute("aria-pressed", "true")
            page.keyboard.press(_key_of(wrong))
            sync_api.expect(page.locator(f'#labels button[data-label="{wrong}"]')).to_have_attribute("aria-pressed", "false")
            for name in gold[example_id]:
                page.keyboard.press(_key_of(name))
            assert state(run_dir)["records"] == [] or len(state(run_dir)["records"]) == k  # toggles write nothing
            page.keyboard.press("Enter")
            sync_api.expect(page.locator("#batch-count")).to_have_text(f"{k + 1} / 4")
    records = state(run_dir)["records"]
    assert len(records) == 4 and all(r["labels"] == gold[r["id"]] for r in records)


def test_a_text_with_script_shows_as_text(tmp_path, tiny_bert, page):
    extra = [{"id": "evil", "text": SCRIPT_TEXT, "label": "sport"}]
    run_dir, gold = make_run(tmp_path / "evil", tiny_bert, extra_rows=extra, query="script", n=1, query_size=2)
    with serving(run_dir, overlap=False) as url:
        page.goto(url)
        sync_api.expect(page.locator("#item-id")).to_have_text("id evil")
        assert page.locator("#text").text_content() == SCRIPT_TEXT
        assert page.locator("#text script, #text img").count() == 0
        assert page.locator("#text mark").all_text_contents() == ["script", "script", "script"]  # the query's hits
        assert page.evaluate("window.__pwned") is None
        page.keyboard.press(_key_of("sport"))
        sync_api.expect(page.locator("#batch-count")).to_have_text("1 / 1")
    (record,) = state(run_dir)["records"]
    assert record["id"] == "evil" and record["labels"] == ["sport"]


# ---------------------------------------------------------------- another web site, open in the same browser
ATTACK = """<!doctype html><html><body>
<form id="form" method="POST" action="{target}/api/round" enctype="text/plain">
  <input name='{{"client": "x", "pad": "' value='"}}'>
</form>
<script>
  const target = "{target}";
  const json = (body) => JSON.stringify(body);
  const sent = [
    // a fetch that needs no permission: text/plain, no-cors (the response is opaque, the request is sent)
    fetch(target + "/api/answer", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
                                   body: json({{client: "x", id: "{example}", labels: ["{label}"]}})}}),
    fetch(target + "/api/round", {{method: "POST", mode: "no-cors", body: "{{}}"}}),
    // JSON needs the server's permission (a preflight this server never grants): nothing is sent
    fetch(target + "/api/take", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                                 body: json({{client: "x"}})}}),
  ];
  // images: ten GETs with fresh client ids (what took every item for ten minutes)
  for (let k = 0; k < 10; k++) {{
    sent.push(new Promise((done) => {{ const img = new Image(); img.onload = img.onerror = done;
                                       img.src = target + "/api/item?client=attacker" + k; }}));
  }}
  Promise.allSettled(sent).then(() => document.getElementById("form").submit());
</script></body></html>"""


@contextlib.contextmanager
def attacker_site(host: str, html: str):
    """Another web site: a second local server, on another port, serving ``html`` at ``/``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("attacker_host", ["localhost", "127.0.0.1"])  # another site; the same site on another port
def test_another_site_cannot_start_a_round_answer_or_take_items(single, tmp_path, page, attacker_host):
    from lit_al.labeling import Answer
    from lit_al.session import import_answers, load_run_data

    run_dir = copy_run(single[0], tmp_path / "run")
    gold = single[1]
    data = load_run_data(run_dir)
    pending = [data.pool.ids[i] for i in state(run_dir)["pending"]["pool_indices"]]
    # one item answered: a round could start now (it would commit the half-answered batch)
    import_answers(run_dir, [Answer(pending[0], tuple(gold[pending[0]]))], schema=data.schema, ids=data.pool.ids)
    before = (run_dir / "state.json").read_bytes()
    with serving(run_dir) as url:
        target = url.rstrip("/")
        html = ATTACK.format(target=target, example=pending[1], label=gold[pending[1]][0])
        with attacker_site(attacker_host, html) as evil:
            page.goto(evil)
            page.wait_for_url(f"{target}/api/round")  # the form was submitted: every request before it was sent
            page.wait_for_load_state()
            assert "content-type: send the body as application/json" in page.content()
        assert _get(f"{target}/api/round")["state"] == "idle"  # no round started
        items = {_get(f"{target}/api/item?client=attacker{k}")["mode"] for k in range(10)}
        assert items == {"open"}  # the GETs took no item
    assert (run_dir / "state.json").read_bytes() == before  # nothing answered


# ---------------------------------------------------------------- what the page shows
def test_highlights_land_on_the_keyword_after_emoji(tmp_path, tiny_bert, page):
    extra = [{"id": "emoji", "text": "\U0001F600\U0001F600 zzkw and \U0001F600 zzkw", "label": "sport"}]
    run_dir, _ = make_run(tmp_path / "emoji", tiny_bert, extra_rows=extra, query="zzkw", n=1, query_size=2)
    with serving(run_dir) as url:
        page.goto(url)
        sync_api.expect(page.locator("#item-id")).to_have_text("id emoji")
        assert page.locator("#text mark").all_text_contents() == ["zzkw", "zzkw"]  # not "\ude00 zz"
        assert page.locator("#text").text_content() == extra[0]["text"]


def test_a_near_chance_suggestion_is_shown_as_a_guess_not_on_the_blue_button(single, tmp_path, page):
    run_dir = copy_run(single[0], tmp_path / "run")
    set_suggestions(run_dir, {0: (("sport",), 0.36), 1: (("money",), 0.95)})  # 3 labels: chance is 1/3
    with serving(run_dir) as url:
        page.goto(url)
        sync_api.expect(page.locator("#position")).to_contain_text("item 1 of 8")
        sync_api.expect(page.locator("#suggestion")).to_have_text(
            "the model is unsure: it leans to sport (confidence 36%, close to chance): decide yourself")
        accept = page.locator("#accept")
        sync_api.expect(accept).to_be_visible()
        sync_api.expect(accept).not_to_have_class(re.compile(r"\bprimary\b"))
        sync_api.expect(accept).to_contain_text("accept the guess")
        blue = "rgb(47, 95, 208)"  # --accent
        assert accept.evaluate("e => getComputedStyle(e).backgroundColor") != blue
        sync_api.expect(page.locator('#labels button[data-label="sport"]')).to_have_class(re.compile(r"suggested unsure"))
        page.keyboard.press(_key_of("tech"))  # the person decides
        sync_api.expect(page.locator("#position")).to_contain_text("item 2 of 8")
        sync_api.expect(page.locator("#suggestion")).to_have_text("model suggests money (confidence 95%)")
        sync_api.expect(accept).to_have_class(re.compile(r"\bprimary\b"))
        assert accept.evaluate("e => getComputedStyle(e).backgroundColor") == blue
        sync_api.expect(page.locator('#labels button[data-label="money"]')).not_to_have_class(re.compile("unsure"))
        page.keyboard.press("Enter")  # a confident suggestion, accepted
        sync_api.expect(page.locator("#batch-count")).to_have_text("2 / 8")
    assert sorted(r["labels"][0] for r in state(run_dir)["records"]) == ["money", "tech"]


def test_an_item_held_by_a_crashed_tab_is_taken_back_by_its_annotator(single, tmp_path, page):
    run_dir = copy_run(single[0], tmp_path / "run")
    with serving(run_dir) as url:
        secret = re.search(r'name="lit-al-page" content="([^"]+)"', urllib.request.urlopen(url).read().decode()).group(1)

        def take(client: str, annotator: str) -> dict:
            request = urllib.request.Request(f"{url}api/take", data=json.dumps({"client": client, "annotator": annotator}).encode(),
                                             headers={"Content-Type": "application/json", "X-Lit-Al-Page": secret})
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())

        held = [take(f"bo{k}", "bo")["item"]["id"] for k in range(7)]
        crashed = take("ana-crashed-tab", "ana")["item"]["id"]  # the whole batch is held; ana's tab crashes
        page.goto(url)
        page.locator("#annotator").fill("ana")
        page.locator("#annotator").press("Tab")
        page.reload()
        sync_api.expect(page.locator("#message")).to_contain_text(
            "the 8 items left are with other annotators; 1 item under your name 'ana' in another tab")
        page.locator("#reclaim").click()
        sync_api.expect(page.locator("#item-id")).to_have_text(f"id {crashed}")
        sync_api.expect(page.locator("#reclaim")).to_be_hidden()
        assert crashed not in held


def test_a_tab_navigated_away_gives_its_item_back_at_once(single, tmp_path, browser):
    """The page's goodbye (a keepalive POST on pagehide) passes the same checks as every other POST."""
    run_dir = copy_run(single[0], tmp_path / "run")
    first, second = (browser.new_context() for _ in range(2))
    try:
        with serving(run_dir) as url:
            one, two = first.new_page(), second.new_page()
            one.goto(url)
            sync_api.expect(one.locator("#item-id")).to_have_text(re.compile(r"^id "))
            held = _shown_id(one)
            two.goto(url)
            sync_api.expect(two.locator("#item-id")).not_to_have_text(f"id {held}")  # held by the first tab
            one.goto("about:blank")  # the first tab leaves: its item goes back at once
            three = second.new_page()
            three.goto(url)
            sync_api.expect(three.locator("#item-id")).to_have_text(f"id {held}")
    finally:
        first.close()
        second.close()
