"""The operator console in a real browser: headless Chromium driven by selenium, against
the demo app served by waitress.  Each test checks on the page what an operator sees,
and leaves screenshots at 800x480 and 1280x800 in build/screenshots/.

Skipped without Chromium, chromedriver or selenium; failed instead when
PEESTORE_REQUIRE_BROWSER=1 (as in CI).
"""
import json
import urllib.error
import urllib.request

import bottle
import peewee
import pytest

import peestore
# At import, not inside a test: the hook fixtures would remove the demo's hooks.
from peestore.demo import MODELS, make_app, seed
from peestore.db._connect import get_database
from peestore.rest._server import background

from . import browser

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Site:
    """The console of one served app, in the test's browser."""

    def __init__(self, driver, url):
        self.driver = driver
        self.url = url

    # -- the browser ---------------------------------------------------------

    def open(self, path=""):
        self.driver.get(self.url + "/db/console/" + path)
        self.ready()

    def ready(self, page=None):
        """Wait until the page's script has loaded what it shows (on a ``page`` of that
        kind: a click that navigates returns before the next page is there)."""
        browser.wait(self.driver, lambda d: d.execute_script(
            "var m = document.getElementById('main');"
            "return m && m.dataset.state === 'ready' && document.body.dataset.page;")
            in ((page,) if page else ("home", "table", "record", "new", "audit", "diagram",
                                      "data", "message")),
            "the page did not finish loading")

    def until(self, condition, message=""):
        return browser.wait(self.driver, lambda d: condition(), message)

    def find(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css):
        return self.find(css).text

    def has(self, css):
        return bool(self.all(css))

    def type(self, css, text):
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def choose(self, css, label):
        from selenium.webdriver.support.ui import Select

        Select(self.find(css)).select_by_visible_text(label)

    def click(self, css):
        self.find(css).click()

    def flash(self):
        return self.text("#flash") if self.find("#flash").is_displayed() else ""

    def shots(self, name, at=None):
        """Screenshots at both sizes (scrolled to ``at``); the page itself never scrolls
        sideways on the panel."""
        overflow = browser.screenshots(self.driver, name, at)
        assert overflow == 0, "%s: the page is %d px wider than an 800 px panel" % (
            name, overflow)

    def set_user(self, name):
        """The operator name the page asks for, as if it had been typed in once."""
        self.driver.get(self.url + "/db/console/static/console.css")
        self.driver.execute_script("localStorage.setItem('peestore.console.user', "
                                   "arguments[0])", name)

    # -- another client, through the JSON routes -----------------------------

    def api(self, method, path, body=None, user="other-panel"):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  "X-User": user})
        try:
            with urllib.request.urlopen(request, timeout=10) as res:
                return json.loads(res.read() or b"null")
        except urllib.error.HTTPError as exc:
            return {"status": exc.code, **json.loads(exc.read())}


@pytest.fixture
def site(tmp_path):
    """The demo app on a fresh database, served by waitress, in a fresh headless Chromium;
    the operator is "tester"."""
    browser.require()
    app = make_app("sqlite:///%s" % (tmp_path / "console.db"))
    with background(app) as url, browser.session() as driver:
        served = Site(driver, url)
        served.set_user("tester")
        yield served
    get_database().close()


def test_every_page_at_both_sizes(site):
    """Every page loads its data, fits an 800x480 panel without scrolling sideways, and
    is photographed at both sizes; wide tables scroll inside their own box."""
    site.open()
    site.until(lambda: site.text('[data-count="recipes"]') == "2 rows")
    assert site.text('[data-count="machines"]') == "1 row"
    assert site.text("#health").startswith("Database: sqlite, answering")
    site.shots("home")
    site.open("machines")
    assert [td.text for td in site.all("#rows tbody td")][:3] == ["1", "press-1", "PX-0001"]
    site.shots("table")
    assert site.driver.execute_script(
        "var s = document.querySelector('.scroll'); return s.scrollWidth > s.clientWidth;")
    site.open("machines/1")
    assert site.find("#f-name").get_attribute("value") == "press-1"
    assert site.text("#history .entry .op") == "CREATE"
    site.shots("record")
    site.open("machines/new")
    assert site.has("#f-name") and not site.has("#f-id")
    site.shots("new")
    site.open("recipes/1")
    site.shots("record-soft-delete-model")
    site.open("audit")
    assert len(site.all("#entries .entry")) == 3   # the seed: a machine, two recipes
    site.shots("audit")
    site.open("diagram")
    assert site.driver.execute_script("return document.getElementById('diagram').naturalWidth") > 0
    site.shots("diagram")
    site.open("data")
    assert site.has('a[href="/db/backup.sqlite"]') and site.has('a[href="/db/export.zip"]')
    site.shots("data")


def test_404_pages(site):
    """An unknown component or record is a page that says so."""
    site.open("valves")
    assert "There is no component called 'valves' here" in site.text("main")
    site.shots("404-component")
    site.open("machines/999")
    assert site.text("main .explain") == "There is no machines record with id '999'."
    site.click("main a.button")
    site.ready("table")
    assert site.driver.current_url.endswith("/db/console/machines")
    site.shots("404-record")


def test_the_name_prompt_without_authenticate(site):
    """Without authenticate the page asks once for the operator's name, keeps it, sends it
    as X-User (UTF-8) on writes, and lets it be changed."""
    site.driver.execute_script("localStorage.clear()")
    site.open()
    site.until(lambda: site.find("#ask-name").is_displayed())
    site.shots("name-prompt")
    site.type("#user-name", "Jürgen")
    site.click("#ask-name button.primary")
    site.until(lambda: not site.has("#ask-name"))
    assert site.text("#who") == "Operator: Jürgen"
    site.open("machines/1")
    assert not site.has("#ask-name")          # asked once: kept in this browser
    site.type("#f-location", "hall B")
    site.click("#save")
    site.until(lambda: site.flash().startswith("Saved."))
    entry = site.api("GET", "/db/audit?component=machines&operation=update")[0]
    assert entry["actor"] == "Jürgen" and entry["after"]["location"] == "hall B"
    site.click("#change-user")
    assert site.find("#user-name").get_attribute("value") == "Jürgen"
    site.type("#user-name", "Ana")
    site.click("#ask-name button.primary")
    site.until(lambda: site.text("#who") == "Operator: Ana")


def _rows(site):
    """The second column of the table, read at once (the page may be redrawing it)."""
    return site.driver.execute_script(
        "return Array.from(document.querySelectorAll('#rows tbody tr td:nth-child(2)'),"
        " function (td) { return td.textContent; });")


def test_create_filter_sort_and_page(site):
    """Create from the form; then page (50 rows), sort by a column, filter with an
    operator (kept on a reload), and see a bad filter's 400 at the top."""
    site.open("machines/new")
    site.type("#f-name", "m-00")
    site.type("#f-serial", "S-00")
    site.choose("#f-status", "running")
    site.click("#save")
    site.ready("record")
    assert site.find("#f-name").get_attribute("value") == "m-00"
    assert site.find("#f-status").get_attribute("value") is not None
    created = site.api("GET", "/machines/?name=m-00")[0]
    assert created["status"] == "running" and created["serial"] == "S-00"
    for i in range(1, 60):
        site.api("POST", "/machines/", {"name": "m-%02d" % i, "serial": "S-%02d" % i})
    site.open("machines")
    assert site.text("#position") == "rows 1–50 of 61"
    site.click("#next")
    site.until(lambda: site.text("#position") == "rows 51–61 of 61")
    assert "offset=50" in site.driver.current_url and len(site.all("#rows tbody tr")) == 11
    site.click("#prev")
    site.until(lambda: site.text("#position") == "rows 1–50 of 61")
    site.click('button[data-sort="name"]')
    site.until(lambda: "order_by=name" in site.driver.current_url and _rows(site)[0] == "m-00")
    site.click('button[data-sort="name"]')
    site.until(lambda: "order_by=-name" in site.driver.current_url
               and _rows(site)[0] == "press-1")
    assert _rows(site)[1] == "m-59" and "▼" in site.text('button[data-sort="name"]')
    site.click("#add-filter")
    row = "#filter-list .filter:last-child "
    site.choose(row + ".f-field", "name")
    site.choose(row + ".f-op", "startswith")
    site.type(row + ".f-value", "m-0")
    site.click("#apply")
    site.until(lambda: site.text("#position") == "rows 1–10 of 10")
    assert _rows(site) == ["m-%02d" % i for i in range(9, -1, -1)]
    assert "name__startswith=m-0" in site.driver.current_url
    site.shots("table-filtered")
    site.driver.refresh()
    site.ready()
    assert site.text("#position") == "rows 1–10 of 10"
    assert site.find(row + ".f-value").get_attribute("value") == "m-0"
    site.click("#add-filter")
    site.choose(row + ".f-field", "max_speed_rpm")
    site.choose(row + ".f-op", "gt")
    site.type(row + ".f-value", "fast")
    site.click("#apply")
    site.until(lambda: "max_speed_rpm" in site.flash())
    assert "(HTTP 400)" in site.flash()
    site.shots("table-bad-filter")


def test_a_validation_error_is_shown_at_its_field(site):
    """A 422 puts each message next to its field (the hook's and the type check's)."""
    site.open("recipes/1")
    site.type("#f-speed_rpm", "99999")
    site.type("#f-duration_s", "abc")
    site.click("#save")
    site.until(lambda: site.text("#e-duration_s") == "expected an integer")
    assert "bad" in site.find('[data-field="duration_s"]').get_attribute("class")
    assert site.flash().startswith("Not saved: see the fields marked below.")
    site.shots("record-validation-type", "#e-duration_s")
    site.type("#f-duration_s", "30")
    site.click("#save")
    site.until(lambda: "must be between 0 and the machine's max_speed_rpm"
               in site.text("#e-speed_rpm"))
    assert site.text("#e-duration_s") == ""
    assert site.api("GET", "/recipes/1")["speed_rpm"] == 1200.0
    site.shots("record-validation-hook", "#e-speed_rpm")


def test_a_stale_edit_shows_changed_meanwhile(site):
    """Another panel changes the row after this page loaded it: saving is a 412, shown as
    "changed meanwhile" with a reload button, and nothing is overwritten."""
    site.open("recipes/1")
    # Typed first: an untouched page would show the other panel's change by itself
    # (test_a_change_elsewhere_appears_without_reload).
    site.type("#f-temperature_c", "25")
    site.api("PATCH", "/recipes/1", {"name": "changed elsewhere"})
    site.click("#save")
    site.until(lambda: site.flash().startswith("Changed meanwhile"))
    site.shots("record-changed-meanwhile")
    row = site.api("GET", "/recipes/1")
    assert row["temperature_c"] == 20.0 and row["name"] == "changed elsewhere"
    site.click("#flash button")
    site.until(lambda: site.find("#f-name").get_attribute("value") == "changed elsewhere")
    assert site.find("#f-temperature_c").get_attribute("value") == "20"
    site.type("#f-temperature_c", "25")
    site.click("#save")
    site.until(lambda: site.flash().startswith("Saved."))
    assert site.api("GET", "/recipes/1")["temperature_c"] == 25.0


def test_a_change_elsewhere_appears_without_reload(site):
    """An open table page shows a record another client creates, and an open record
    page another client's change to it, without being reloaded (GET /db/changes);
    a record page with unsaved typing says so instead of overwriting it."""
    site.open("machines")
    site.driver.execute_script("window.notReloaded = true")
    site.api("POST", "/machines/", {"name": "press-live", "serial": "LIVE-1"})
    site.until(lambda: "press-live" in _rows(site), "the new row did not appear")
    assert site.driver.execute_script("return window.notReloaded === true")
    site.shots("table-live")
    site.open("machines/1")
    site.driver.execute_script("window.notReloaded = true")
    site.api("PATCH", "/machines/1", {"location": "hall C"})
    site.until(lambda: site.find("#f-location").get_attribute("value") == "hall C",
               "the record page did not show the change")
    assert site.driver.execute_script("return window.notReloaded === true")
    site.type("#f-name", "typed here")
    site.api("PATCH", "/machines/1", {"location": "hall D"})
    site.until(lambda: site.flash().startswith("Changed meanwhile by other-panel"),
               "no notice of the change")
    assert site.find("#f-name").get_attribute("value") == "typed here"
    site.click("#flash button")
    site.until(lambda: site.find("#f-location").get_attribute("value") == "hall D")


def test_a_reason_goes_with_the_change(site):
    """The reason typed on the record page goes with the write (X-Reason) into the
    audit entry, and the history shows it."""
    site.open("recipes/1")
    site.type("#f-duration_s", "50")
    site.type("#change-reason", "Ölwechsel: Schicht B")
    site.click("#save")
    site.until(lambda: site.flash().startswith("Saved."))
    assert site.text("#history .entry .reason q") == "Ölwechsel: Schicht B"
    entry = site.api("GET", "/recipes/1/history")[0]
    assert entry["reason"] == "Ölwechsel: Schicht B" and entry["actor"] == "tester"
    site.shots("record-with-reason", at="#history")


class Dose(peestore.BaseAuditedModel):
    """A value a regulated process changes only with a reason."""

    name = peewee.CharField()
    amount = peewee.FloatField(default=0.0)

    class Meta:
        component = "doses"
        require_reason = True


def test_a_model_that_requires_a_reason(tmp_path):
    """Without a reason the console says so at the reason field and writes nothing; with
    one, the write goes in and records it."""
    browser.require()
    app = peestore.bootstrap(models=[Dose], database_url="sqlite:///%s" % (
        tmp_path / "doses.db"))
    with background(app) as url, browser.session() as driver:
        site = Site(driver, url)
        site.set_user("qa")
        site.open("doses/new")
        site.type("#f-name", "saline")
        site.click("#save")
        site.until(lambda: site.text("#e-change-reason").startswith("required"))
        assert site.api("GET", "/doses/") == []
        site.shots("new-reason-required")
        site.type("#change-reason", "batch 7 recipe, CC-2031")
        site.click("#save")
        site.ready("record")
        entry = site.api("GET", "/doses/1/history")[0]
        assert entry["reason"] == "batch 7 recipe, CC-2031" and entry["actor"] == "qa"
        site.type("#f-amount", "2.5")
        site.click("#save")
        site.until(lambda: site.text("#e-change-reason").startswith("required"))
        assert site.api("GET", "/doses/1")["amount"] == 0.0


def test_delete_and_restore(site):
    """A soft delete after a confirmation, the row then shown as deleted (in the table on
    request), and restored from its page."""
    site.open("recipes/2")
    site.click("#delete")
    site.shots("record-delete-confirm")
    site.click("#confirm")
    site.until(lambda: site.find("#state").is_displayed())
    assert site.text("#state").startswith("Deleted (soft) at")
    assert site.api("GET", "/recipes/2")["status"] == 404
    assert not site.find("#f-name").is_enabled()
    site.shots("record-deleted")
    site.open("recipes")
    assert [td.text for td in site.all("#rows tbody td:first-child")] == ["1"]
    site.click("#include-deleted")
    site.until(lambda: len(site.all("#rows tbody tr")) == 2)
    assert "deleted" in site.find("#rows tbody tr.deleted").text
    assert "include_deleted=true" in site.driver.current_url
    site.shots("table-with-deleted")
    site.find("#rows tr.deleted a.open").click()
    site.ready("record")
    site.click("#restore")
    site.until(lambda: site.flash().startswith("Restored."))
    assert not site.find("#state").is_displayed()
    assert site.api("GET", "/recipes/2")["deleted_at"] is None
    assert [e.text for e in site.all("#history .op")][:2] == ["RESTORE", "SOFT_DELETE"]


def test_revert_from_the_history(site):
    """Each entry shows actor, time and field: before -> after; "revert to this" sets the
    record back to it (after a confirmation) as a new audited change."""
    site.api("PATCH", "/recipes/1", {"name": "v2"}, user="anna")
    site.api("PATCH", "/recipes/1", {"name": "v3", "duration_s": 50}, user="bob")
    site.open("recipes/1")
    entries = site.all("#history .entry")
    assert len(entries) == 3
    newest = entries[0].text
    assert "UPDATE by bob" in newest and "name: v2 → v3" in newest
    assert "duration_s: 45 → 50" in newest
    assert not entries[0].find_elements("css selector", "button.revert")  # it is the row now
    assert "name: steel 2mm → v2" in entries[1].text
    site.shots("record-history", "#history")
    entries[2].find_element("css selector", "button.revert").click()
    site.click("#confirm-revert")
    site.until(lambda: site.flash().startswith("Reverted to entry"))
    assert site.find("#f-name").get_attribute("value") == "steel 2mm"
    assert site.find("#f-duration_s").get_attribute("value") == "45"
    assert "UPDATE by tester" in site.all("#history .entry")[0].text
    row = site.api("GET", "/recipes/1")
    assert (row["name"], row["duration_s"]) == ("steel 2mm", 45)


def test_the_audit_page_filters(site):
    """Filter the log by actor and operation (and component); the filter is in the URL,
    so a reload shows the same entries."""
    site.api("PATCH", "/machines/1", {"location": "hall C"}, user="alice")
    site.api("PATCH", "/recipes/1", {"name": "x"}, user="bob")
    site.api("PATCH", "/recipes/2", {"name": "y"}, user="bob")
    site.api("DELETE", "/recipes/2", user="bob")
    site.open("audit")
    site.type('#audit-filters [name="actor"]', "bob")
    site.choose('#audit-filters [name="operation"]', "update")
    site.click("#audit-filters button.primary")
    site.until(lambda: site.text("#position") == "entries 1–2 of 2")
    heads = [e.text for e in site.all("#entries .entry .head")]
    assert all("UPDATE by bob" in h for h in heads) and "recipes 2" in heads[0]
    assert "actor=bob" in site.driver.current_url
    site.shots("audit-filtered")
    site.driver.refresh()
    site.ready()
    assert site.text("#position") == "entries 1–2 of 2"
    assert site.find('#audit-filters [name="actor"]').get_attribute("value") == "bob"
    site.choose('#audit-filters [name="component"]', "machines")
    site.type('#audit-filters [name="actor"]', "")
    site.choose('#audit-filters [name="operation"]', "any")
    site.click("#audit-filters button.primary")
    # The page before showed two entries too: wait for the new filter's own.
    site.until(lambda: "component=machines" in site.driver.current_url
               and "alice" in " ".join(h.text for h in site.all("#entries .entry .head")[:1]))
    assert site.text("#position") == "entries 1–2 of 2"
    # Time: the inputs are in the browser's time, the URL and the query in UTC.
    site.driver.execute_script(
        "document.querySelector('#audit-filters [name=since]').value = '2099-01-01T00:00:00'")
    site.click("#audit-filters button.primary")
    site.until(lambda: site.text("#summary") == "No audit entries match.")
    assert "since=2099-01-01T" in site.driver.current_url and site.text("#position") == ""
    site.driver.refresh()
    site.ready()
    assert site.find('#audit-filters [name="since"]').get_attribute("value").startswith(
        "2099-01-01T00:00")
    site.driver.execute_script(
        "document.querySelector('#audit-filters [name=since]').value = '2000-01-01T00:00:00'")
    site.click("#audit-filters button.primary")
    site.until(lambda: site.text("#position") == "entries 1–2 of 2")


def test_restore_with_a_dry_run_then_a_confirmation(site, tmp_path):
    """The data page checks an uploaded backup first (nothing changes), shows the answer,
    and restores only when confirmed."""
    backup = peestore.backup(tmp_path / "before.sqlite")
    site.api("POST", "/machines/", {"name": "after-backup", "serial": "AB"})
    site.open("data")
    site.find('#restore-form input[type="file"]').send_keys(str(backup))
    site.click("#restore-form button.primary")
    site.until(lambda: site.has("#restore-now"))
    assert "The file is a valid backup of this database" in site.text("#restore-result")
    assert "before.sqlite" in site.text("#restore-result")
    assert "after-backup" in [m["name"] for m in site.api("GET", "/machines/")]
    site.shots("data-restore-checked", "#restore-result")
    site.click("#restore-now")
    site.until(lambda: site.text("#restore-result").startswith("Restored."))
    assert [m["name"] for m in site.api("GET", "/machines/")] == ["press-1"]
    site.shots("data-restored", "#restore-result")


def test_a_restore_records_its_reason(site, tmp_path):
    """The reason typed in the restore form goes with the restore (X-Reason) into its
    audit entry."""
    backup = peestore.backup(tmp_path / "before.sqlite")
    site.open("data")
    site.find('#restore-form input[type="file"]').send_keys(str(backup))
    site.type("#restore-reason", "Rücksetzen: falsches Los")
    site.click("#restore-form button.primary")
    site.until(lambda: site.has("#restore-now"))
    site.click("#restore-now")
    site.until(lambda: site.text("#restore-result").startswith("Restored."))
    entry = site.api("GET", "/db/audit")[0]
    assert (entry["operation"], entry["reason"], entry["actor"]) == (
        "restore", "Rücksetzen: falsches Los", "tester")
    site.shots("data-restore-reason", "#restore-form")


def test_an_import_needs_the_reason_its_tables_require(tmp_path):
    """Importing into a table whose changes need a reason: without one the answer says so
    and nothing is imported; with one, the import entry records it."""
    browser.require()
    url_db = "sqlite:///%s" % (tmp_path / "doses.db")
    app = peestore.bootstrap(models=[Dose], database_url=url_db)
    Dose(name="saline", amount=1.0).save(reason="setup")
    zipped = peestore.export_csv(tmp_path / "doses.zip")
    with background(app) as url, browser.session() as driver:
        site = Site(driver, url)
        site.set_user("qa")
        site.open("data")
        site.find('#import-form input[type="file"]').send_keys(str(zipped))
        site.choose('#import-form [name="mode"]', "replace: empty each table first")
        site.click("#import-form button.primary")
        site.until(lambda: site.has("#import-now"))
        site.click("#import-now")
        site.until(lambda: site.text("#import-result").startswith("Nothing was imported."))
        assert "needs a reason" in site.text("#import-result")
        assert [e["operation"] for e in site.api("GET", "/db/audit")] == ["create"]
        site.type("#import-reason", "recipe list 2027, CC-2040")
        site.click("#import-form button.primary")
        site.until(lambda: site.has("#import-now"))
        site.click("#import-now")
        site.until(lambda: site.text("#import-result").startswith("Imported."))
        entry = site.api("GET", "/db/audit")[0]
        assert (entry["operation"], entry["reason"], entry["actor"]) == (
            "import", "recipe list 2027, CC-2040", "qa")
    get_database().close()


def test_an_upload_that_is_not_a_backup_shows_the_reason(site, tmp_path):
    """A file that is not a backup: the 422's reason is on the page, nothing changes."""
    junk = tmp_path / "notes.txt"
    junk.write_text("shift notes, not a database\n" * 10)
    site.open("data")
    site.find('#restore-form input[type="file"]').send_keys(str(junk))
    site.click("#restore-form button.primary")
    site.until(lambda: "cannot be restored" in site.text("#restore-result"))
    text = site.text("#restore-result")
    assert "not a SQLite database" in text and "(HTTP 422)" in text
    assert not site.has("#restore-now")
    site.shots("data-not-a-backup", "#restore-result")


def test_csv_import_upload(site, tmp_path):
    """Import a zip as the export makes it, after a confirmation; the counts are shown."""
    zipped = peestore.export_csv(tmp_path / "export.zip")
    site.api("POST", "/machines/", {"name": "extra", "serial": "EX"})
    site.open("data")
    site.find('#import-form input[type="file"]').send_keys(str(zipped))
    site.choose('#import-form [name="mode"]', "replace: empty each table first")
    site.click("#import-form button.primary")
    site.until(lambda: site.has("#import-now"))
    assert "replacing the rows" in site.text("#import-result")
    site.click("#import-now")
    site.until(lambda: site.text("#import-result").startswith("Imported."))
    assert "machine: 1 row\n" in site.text("#import-result")
    assert "recipe: 2 rows" in site.text("#import-result")
    assert [m["name"] for m in site.api("GET", "/machines/")] == ["press-1"]
    site.shots("data-imported", "#import-result")


USERS = {"ada": ["admin"], "bob": []}


def _cookie_identity(request):
    name = request.get_cookie("operator")
    return {"name": name, "roles": USERS[name]} if name in USERS else None


@pytest.fixture
def guarded(tmp_path):
    """The demo models behind an authenticate function (a cookie names the operator)."""
    browser.require()
    peestore.connect("sqlite:///%s" % (tmp_path / "guarded.db"), models=MODELS)
    with get_database().connection_context(), peestore.actor("setup"):
        seed()
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, authenticate=_cookie_identity))
    with background(app) as url, browser.session() as driver:
        served = Site(driver, url)
        driver.get(url + "/db/console/static/console.css")
        yield served
    get_database().close()


def _sign_in(site, name):
    site.driver.delete_all_cookies()
    if name:
        site.driver.add_cookie({"name": "operator", "value": name, "path": "/"})


def test_authentication_and_the_admin_role(guarded):
    """With authenticate: no identity is a page that explains (401); a non-admin sees no
    data tools and their page is a 403 that explains; writes carry the identity."""
    site = guarded
    _sign_in(site, None)
    site.open("machines")
    assert site.text("main h1") == "Sign in needed"
    assert "sent no credentials it accepts" in site.text("main .explain")
    site.shots("401")
    _sign_in(site, "bob")
    site.open()
    assert not site.has("#ask-name")
    assert site.text("#who") == "Signed in as bob"
    assert "Data tools" not in site.text("header nav")
    site.shots("home-non-admin")
    site.open("data")
    assert site.text("main h1") == "Admin only"
    assert "need the admin role, and bob does not have it" in site.text("main .explain")
    site.shots("403-data")
    site.open("recipes/1")
    site.type("#f-notes", "checked by bob")
    site.click("#save")
    site.until(lambda: site.flash().startswith("Saved."))
    assert site.all("#history .entry .actor")[0].text == "bob"
    _sign_in(site, "ada")
    site.open()
    assert "Data tools" in site.text("header nav")
    site.open("data")
    assert site.has("#restore-form")


XSS = {"name": "<script>window.__pwned = 1</script>",
       "serial": "<img src=x onerror=\"window.__pwned = 2\">",
       "location": "\"><b id=bold>bold</b><svg onload=\"window.__pwned = 3\">"}


def test_stored_markup_is_shown_as_text(site):
    """A row whose text holds <script>, <img onerror> or closing quotes and tags is
    displayed as that text on every page (table, record, history, audit log), and none
    of it runs."""
    created = site.api("POST", "/machines/", XSS)
    moved = "<i>moved</i>"
    site.api("PATCH", "/machines/%d" % created["id"], {"location": moved})
    record = "machines/%d" % created["id"]
    shown = {"machines": [XSS["name"], XSS["serial"], moved],
             record: [XSS["location"], moved],          # in the history
             "audit": list(XSS.values()) + [moved]}
    for path, values in shown.items():
        site.open(path)
        text = site.text("main")
        for value in values:
            assert value in text, (path, value)
        assert site.driver.execute_script("return window.__pwned") is None, path
        assert not site.all("main img") and not site.all("main svg"), path
        assert not site.has("#bold") and not site.all("main i"), path
        site.shots("xss-" + path.replace("/%d" % created["id"], "-record"))
    site.open(record)
    for name in ("name", "serial"):
        assert site.find("#f-" + name).get_attribute("value") == XSS[name]
    assert site.find("#f-location").get_attribute("value") == moved
    assert "location: %s → %s" % (XSS["location"], moved) in site.text("#history")
