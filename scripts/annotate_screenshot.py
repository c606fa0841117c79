"""The README's screenshots of the labeling page, taken in a real run of the shipped practitioner example.

    python scripts/annotate_screenshot.py [--run_dir runs/practitioner] [--out docs]

Round 0 (keyword-query hits highlighted) is shot first; its batch is then answered from
the TREC gold labels shipped beside the unlabeled pool, ``lit_al query --resume`` trains
and proposes round 1, and the page is shot again with the model's suggestion. Needs
Debian's chromium and playwright's Python package (the dev extra); never downloads a browser.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lit_al.annotate.server import serving  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
KEYS = "123456789abcdefghijklmnopqrstuvwxyz"


def lit_al(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run([sys.executable, "-m", "lit_al.cli", *args], check=True, env=env, cwd=ROOT)


def gold_labels() -> dict[str, str]:
    with open(ROOT / "lit_al" / "datasets" / "trec" / "train.csv", encoding="utf-8", newline="") as handle:
        return {row["id"]: row["label"] for row in csv.DictReader(handle)}


def answer_batch(run_dir: Path, round_index: int, gold: dict[str, str], out: Path) -> Path:
    """The round's to_label.csv filled with the gold labels (what a person would have typed)."""
    batch = run_dir / "rounds" / f"round_{round_index:03d}" / "to_label.csv"
    with open(batch, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(out, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label"])
        writer.writerows([row["id"], gold[row["id"]]] for row in rows)
    return out


def shoot(browser, run_dir: Path, gold: dict[str, str], labels: list[str], answers: int, path: Path) -> None:
    """Answer ``answers`` items with the keyboard (as a person would), then save a screenshot of the page."""
    with serving(run_dir, annotator="ana", overlap=False) as url:
        page = browser.new_page(viewport={"width": 980, "height": 540}, device_scale_factor=1)
        page.goto(url)
        page.locator("#item-id").wait_for()
        for k in range(answers):
            example_id = page.locator("#item-id").inner_text().removeprefix("id ")
            page.keyboard.press(KEYS[labels.index(gold[example_id])])
            page.wait_for_function(f"document.getElementById('batch-count').textContent.startsWith('{k + 1} /')")
        page.screenshot(path=str(path), full_page=True)
        page.close()
    print(f"wrote {path}")


def main() -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", default="runs/practitioner", help="relative to the repository root")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    os.chdir(ROOT)  # the page shows the run directory as given: runs/practitioner, as in the README
    run_dir, out = Path(args.run_dir), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gold = gold_labels()
    labels = (ROOT / "lit_al" / "datasets" / "trec" / "labels.txt").read_text(encoding="utf-8").split()
    if not (run_dir / "state.json").is_file():
        lit_al("query", "--config", "configs/practitioner.yaml", "--run_dir", str(run_dir))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        shoot(browser, run_dir, gold, labels, 3, out / "annotate_keyword_query.png")
        lit_al("label", str(run_dir), str(answer_batch(run_dir, 0, gold, run_dir / "answers_round_000.csv")))
        lit_al("query", "--resume", str(run_dir))
        shoot(browser, run_dir, gold, labels, 4, out / "annotate.png")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
