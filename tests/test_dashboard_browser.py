"""The dashboard in a real browser (headless Chromium over the DevTools protocol): the page
runs its script and shows the project, its best trial and score; trials written after it
opened appear without a reload; a steered search shows where trials came from, notes and
retired trials, and follows a retirement; a project with no trial; names from the file stay
text; no console error."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from _browser import Browser, browser_path
from _dashboard import (
    HOSTILE,
    HOSTILE_NOTE,
    HOSTILE_PROJECT,
    space,
    write_search,
    write_steered,
)

import hpstore
from hpstore.dashboard import open_dashboard

pytestmark = pytest.mark.skipif(browser_path() is None, reason=(
    "chromium is not on PATH (apt-get install chromium): the page needs a real browser"))


def js(value: str) -> str:
    return json.dumps(value)


def write_trials(path: str, losses: list[float], max_trials: int = 40) -> list[str]:
    """Trials of the project HOSTILE_PROJECT that report ``losses``; their ids."""
    oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=max_trials, seed=5,
                                        database=path, project_name=HOSTILE_PROJECT,
                                        hyperparameters=space())
    ids = []
    for loss in losses:
        trial = oracle.create_trial("<i>writer</i>")
        oracle.update_trial(trial.trial_id, {"loss": loss + 1.0}, step=0)
        oracle.update_trial(trial.trial_id, {"loss": loss}, step=1)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        ids.append(trial.trial_id)
    oracle.close()
    return ids


@pytest.fixture
def served(tmp_path):
    path = str(tmp_path / "search.db")
    write_trials(path, [5.0, 3.5, 8.0, 4.25])
    write_search(path, "done", 6)
    with open_dashboard(path, port=0) as running:
        running.start()
        yield path, running.url


@pytest.fixture
def browser(tmp_path):
    opened = Browser(tmp_path / "profile")
    yield opened
    opened.close()


def rows(browser: Browser) -> str:
    return "document.querySelectorAll('#trials-list tbody tr').length"


@pytest.mark.slow
def test_the_page_shows_the_search_and_follows_it_without_a_reload(served, browser):
    path, url = served
    browser.open(f"{url}project?p={json.dumps(HOSTILE_PROJECT)[1:-1]}".replace(" ", "%20"))
    browser.wait_for(f"document.querySelector('#title')?.textContent === {js(HOSTILE_PROJECT)}")
    assert browser.wait_for("document.querySelector('#best-trial')?.textContent") == "trial 01"
    assert browser.evaluate("document.querySelector('#best-score').textContent") == "3.5"
    assert browser.wait_for(f"{rows(browser)} === 4")
    assert browser.wait_for("document.querySelectorAll('svg.plot').length") >= 4
    assert browser.evaluate("document.title") == f"{HOSTILE_PROJECT} - hpstore dashboard"
    browser.evaluate("window.sameDocument = 'yes'")  # gone if the page were loaded again
    new = write_trials(path, [9.0, 1.5, 7.0])
    assert browser.wait_for(f"{rows(browser)} === 7")
    shown = browser.evaluate("[...document.querySelectorAll('#trials-list tbody tr')]"
                             ".map(r => r.dataset.trial)")
    assert set(new) <= set(shown)
    assert browser.wait_for("document.querySelector('#best-trial').textContent") == (
        f"trial {new[1]}")
    assert browser.wait_for("document.querySelector('#best-score').textContent === '1.5'")
    events = browser.evaluate("document.querySelector('#events').textContent")
    assert f"trial {new[2]}: RUNNING → COMPLETED on <i>writer</i>, score 7" in events
    assert browser.evaluate("window.sameDocument") == "yes"
    # what the file holds is text on the page, never markup
    assert browser.evaluate("document.querySelectorAll('img, script:not([src])').length") == 0
    assert HOSTILE in browser.evaluate("document.querySelector('#trials-list thead')"
                                       ".textContent")
    assert browser.evaluate("document.querySelectorAll('i:not(.dot):not(.bar)').length") == 0
    assert browser.problems() == []


@pytest.mark.slow
def test_every_page_runs_without_an_error(served, browser):
    _, url = served
    browser.open(url)
    assert browser.wait_for("document.querySelectorAll('#projects tbody tr').length === 2")
    names = browser.evaluate("[...document.querySelectorAll('#projects tbody tr')]"
                             ".map(r => r.dataset.project)")
    assert sorted(names) == sorted([HOSTILE_PROJECT, "done"])
    browser.open(f"{url}trial?p=done&t=0")
    assert browser.wait_for("document.querySelector('#title')?.textContent") == "Trial 0"
    assert browser.wait_for("document.querySelectorAll('#status-log tbody tr').length") == 2
    assert browser.wait_for("document.querySelector('#live').textContent").startswith(
        "finished")
    browser.open(f"{url}compare?a=done&b={HOSTILE_PROJECT.replace(' ', '%20')}")
    assert browser.wait_for("document.querySelectorAll('#compare-facts tbody tr').length") == 2
    assert browser.wait_for("!!document.querySelector('#compare-plot svg')")
    # the file, as on every page (it stayed empty here)
    assert browser.evaluate("document.getElementById('location').textContent") == served[0]
    browser.open(f"{url}project?p=done")
    assert browser.wait_for("document.querySelector('#live').textContent").startswith(
        "finished: The search is finished: 6 of 6 trials ended.")
    # a page that stopped following says when, not "N s ago" frozen at its last poll
    assert "last activity at " in browser.evaluate("document.querySelector('#meta')"
                                                   ".textContent")
    assert browser.evaluate("document.querySelector('#trials-list tbody tr td a')"
                            ".getAttribute('href')") == "/trial?p=done&t=0"
    assert browser.problems() == []


def cell_of(column: str, trial: str) -> str:
    """An expression: the text of ``column``'s cell in the row of ``trial``."""
    return (f"(() => {{ const heads = [...document.querySelectorAll('#trials-list thead th')]"
            f".map(th => th.textContent); const row = document.querySelector("
            f"'#trials-list tr[data-trial=\"{trial}\"]'); return row ? row.children["
            f"heads.indexOf({js(column)})].textContent : null; }})()")


@pytest.mark.slow
def test_a_steered_search_shows_origins_notes_and_retired_trials_and_follows_a_retirement(
        tmp_path, browser):
    path = str(tmp_path / "search.db")
    ids = write_steered(path, str(tmp_path / "source.db"))
    summary = subprocess.run([sys.executable, "-m", "hpstore", "summary", path],
                             capture_output=True, text=True, timeout=60).stdout
    steered_line = next(line for line in summary.splitlines() if line.startswith("Steered: "))
    with open_dashboard(path, port=0) as running:
        running.start()
        browser.open(f"{running.url}project?p=steered")
        assert browser.wait_for(f"{rows(browser)} === 8")
        assert browser.evaluate("[...document.querySelectorAll('#trials-list tr.retired')]"
                                ".map(r => r.dataset.trial)") == [ids["added"]]
        assert browser.evaluate(cell_of("status", ids["added"])) == "COMPLETED (retired)"
        assert browser.evaluate(cell_of("origin", ids["enqueued"])) == "enqueued"
        assert browser.evaluate(cell_of("origin", ids["warm"][0])).startswith(
            f'warm start: source.db "{HOSTILE_PROJECT}" trial ')
        assert browser.evaluate(cell_of("note", ids["enqueued"])) == HOSTILE_NOTE
        assert browser.evaluate("document.querySelector('#steering').textContent") == (
            steered_line)
        assert "trials 8, 5 of 6 ended (3 added, not counted)" in browser.evaluate(
            "document.querySelector('#meta').textContent")
        assert browser.evaluate("document.querySelector('#best-trial').textContent") == (
            f"trial {ids['completed']}")
        # retired from another process while the page is open: followed without a reload
        browser.evaluate("window.sameDocument = 'yes'")
        oracle = hpstore.Oracle.attach(path, "steered")
        oracle.retire_trial(ids["completed"], "a leak", by="tester")
        oracle.close()
        assert browser.wait_for(f"document.querySelector('#best-trial').textContent === "
                                f"{js('trial ' + ids['enqueued'])}")
        assert browser.wait_for(f"document.querySelector('#trials-list "
                                f"tr[data-trial=\"{ids['completed']}\"].retired') !== null")
        assert "Retired by tester: a leak" in browser.evaluate(
            "document.querySelector('#events').textContent")
        # a note changes no status: the table shows it after a few quiet polls
        oracle = hpstore.Oracle.attach(path, "steered")
        oracle.set_trial_note(ids["stopped"], "diverged <b>early</b>")
        oracle.close()
        assert browser.wait_for(f"{cell_of('note', ids['stopped'])} === "
                                f"{js('diverged <b>early</b>')}")
        assert browser.evaluate("window.sameDocument") == "yes"
        # one trial: where it came from, its note
        browser.open(f"{running.url}trial?p=steered&t={ids['enqueued']}")
        assert browser.wait_for("document.querySelector('#note p')?.textContent") == (
            HOSTILE_NOTE)
        facts = browser.evaluate("Object.fromEntries([...document.querySelectorAll("
                                 "'#facts tr')].map(r => [r.children[0].textContent, "
                                 "r.children[1].textContent]))")
        assert facts["origin"] == "enqueued"
        browser.open(f"{running.url}trial?p=steered&t={ids['added']}")
        assert browser.wait_for("document.querySelector('#title')?.textContent") == (
            f"Trial {ids['added']} (retired)")
        assert browser.evaluate("document.querySelectorAll('img, script:not([src])').length") == 0
        assert browser.problems() == []


@pytest.mark.slow
def test_a_project_with_no_trial_runs_without_an_error(tmp_path, browser):
    path = str(tmp_path / "search.db")
    hpstore.RandomSearchOracle(objective="loss", max_trials=3, database=path,
                               project_name=HOSTILE_PROJECT, hyperparameters=space()).close()
    with open_dashboard(path, port=0) as running:
        running.start()
        browser.open(running.url)
        assert browser.wait_for("document.querySelector('#projects tbody tr a')"
                                "?.textContent") == HOSTILE_PROJECT
        browser.open(f"{running.url}project?p={HOSTILE_PROJECT}".replace(" ", "%20"))
        assert browser.wait_for("document.querySelector('#trials-table')?.textContent") == (
            "No trial matches.")
        assert browser.evaluate("document.querySelector('#best').textContent") == (
            "No trial has a score yet.")
        assert "0 of 3 ended" in browser.evaluate("document.querySelector('#meta').textContent")
        assert browser.wait_for("document.querySelector('#history .plot-box')"
                                ".textContent.includes('a plot needs at least two')")
        assert browser.evaluate("document.querySelector('#live').textContent").startswith(
            "live")
        assert browser.evaluate("document.querySelectorAll('img, script:not([src])').length") == 0
        assert browser.problems() == []


@pytest.mark.slow
def test_keyboard_focus_stays_on_what_a_poll_rebuilds(served, browser):
    # a poll rebuilds the projects' rows, the status filters and the trials table: focus
    # on one of them went back to the page at every change
    path, url = served
    browser.open(url)
    assert browser.wait_for("document.querySelectorAll('#projects tbody tr').length === 2")
    href = browser.evaluate("(() => { const a = document.querySelector('#projects tbody tr a');"
                            " a.focus(); return a.getAttribute('href'); })()")
    before = browser.evaluate("document.querySelector('#projects').textContent")
    write_trials(path, [2.0])
    assert browser.wait_for(f"document.querySelector('#projects').textContent !== {js(before)}")
    assert browser.evaluate("document.activeElement.getAttribute('href')") == href
    browser.open(f"{url}project?p={json.dumps(HOSTILE_PROJECT)[1:-1]}".replace(" ", "%20"))
    assert browser.wait_for(f"{rows(browser)} === 5")
    browser.evaluate("document.querySelector('#status-filter input[value=COMPLETED]').focus()")
    write_trials(path, [2.5])
    assert browser.wait_for(f"{rows(browser)} === 6")
    assert browser.wait_for("document.querySelector('#status-filter').textContent"
                            ".includes('COMPLETED (6)')")
    assert browser.evaluate("document.activeElement.value") == "COMPLETED"
    assert browser.problems() == []


@pytest.mark.slow
def test_a_project_replaced_under_a_ticked_trial_is_followed(served, browser):
    path, url = served
    write_trials(path, [6.0, 7.0])
    browser.open(f"{url}project?p={json.dumps(HOSTILE_PROJECT)[1:-1]}".replace(" ", "%20"))
    assert browser.wait_for(f"{rows(browser)} === 6")
    boxes = "[...document.querySelectorAll('#trials-list tbody input')]"
    browser.evaluate(f"{boxes}.slice(0, 6).forEach(b => b.click())")
    # a sixth curve is refused at its box, and said so: the plots draw five
    assert browser.evaluate(f"{boxes}.map(b => b.checked)") == [True] * 5 + [False]
    assert "At most 5 curves" in browser.evaluate("document.getElementById('pick-note')"
                                                  ".textContent")
    assert browser.wait_for("document.querySelector('#curves').textContent"
                            ".includes('trial 01')")
    # overwrite=True in another process: trial "01" is gone, ids are now 0, 1, ...
    oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=3, seed=9, database=path,
                                        project_name=HOSTILE_PROJECT, hyperparameters=space(),
                                        overwrite=True)
    for loss in (1.0, 2.0, 3.0):
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": loss})
        oracle.end_trial(trial)
    oracle.close()
    assert browser.wait_for(f"{rows(browser)} === 3")
    assert browser.wait_for("document.querySelector('#live').textContent"
                            ".startsWith('finished')")
    # (the last answers may still be on their way when the live line says finished)
    assert browser.wait_for("document.getElementById('error').hidden && !document"
                            ".querySelector('#curves').textContent.includes('trial 01')")
    # A request that lands while the project is being replaced is answered 503 (the
    # search could not be read: the project it named is gone), which the browser logs;
    # the page retries and follows, as the waits above show. Nothing else may be logged.
    assert [p for p in browser.problems()
            if not ("status of 503" in p and "/api/" in p)] == []


@pytest.mark.slow
def test_long_names_and_notes_and_a_phone_wide_window_never_widen_the_page(tmp_path, browser):
    path = str(tmp_path / "long.db")
    long_name = "n" * 1000
    ids = write_trials(path, [1.0, 2.0])
    write_search(path, long_name, 2)
    oracle = hpstore.Oracle.attach(path, HOSTILE_PROJECT)
    oracle.set_trial_note(ids[0], "x" * 5000)  # no space to break at
    oracle.close()
    wide = "document.documentElement.scrollWidth <= window.innerWidth + 1"
    with open_dashboard(path, port=0) as running:
        running.start()
        browser.send("Emulation.setDeviceMetricsOverride", session=True, width=1280,
                     height=900, deviceScaleFactor=1, mobile=False)
        browser.open(running.url)  # the compare choices held the 1,000-character name
        assert browser.wait_for("document.querySelectorAll('#compare-a option').length === 2")
        assert browser.evaluate(wide)
        page = f"{running.url}trial?p={json.dumps(HOSTILE_PROJECT)[1:-1]}&t={ids[0]}"
        browser.open(page.replace(" ", "%20"))
        assert browser.wait_for("document.querySelectorAll('#status-log tbody tr').length")
        assert browser.evaluate(wide)  # the note ran out of its box
        browser.send("Emulation.setDeviceMetricsOverride", session=True, width=375,
                     height=800, deviceScaleFactor=1, mobile=False)
        browser.open(page.replace(" ", "%20"))
        assert browser.wait_for("document.querySelectorAll('#status-log tbody tr').length")
        assert browser.evaluate(wide)  # the status log's table was the only one unboxed
        assert browser.problems() == []
