"""The dashboard in a real browser: headless Chromium (Debian's chromium + chromium-driver,
driven by python3-selenium) loads GET / while pgbench runs through Shoal; the page must show the
pool with non-zero activity, highlight it while clients wait, show throughput and latency with
legends and units, draw its charts across their cards, and keep them across a reload (Shoal
keeps the history). A screenshot is saved as a test artifact (build/artifacts/dashboard.png, or
$SHOAL_ARTIFACTS); docs/dashboard.png is one of them."""
import os
import re
import shutil
import subprocess

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from conftest import REPO
from helpers import db_entry, free_port, wait_until

ARTIFACTS = os.environ.get("SHOAL_ARTIFACTS", os.path.join(REPO, "build", "artifacts"))

# Pixels close to the chart's "active" line colour (#d62728, anti-aliased) in the connections
# canvas.
COUNT_ACTIVE_PIXELS = """
const c = document.querySelector('.pool canvas.conns');
if (!c) return -1;
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4)
  if (d[i + 3] > 128 && d[i] > 150 && d[i + 1] < 110 && d[i + 2] < 110) n++;
return n;
"""


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1400"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def test_dashboard_shows_live_activity(shoal, pg, role_db):
    role, db = role_db
    port = free_port()
    s = shoal(databases={"app": db_entry(pg, db, user=role)},
              settings={"http_port": port, "default_pool_size": 2})
    pgbench = ["pgbench", "-h", "127.0.0.1", "-p", str(s.port), "-U", role]
    subprocess.run(pgbench + ["-i", "-s", "1", "-q", "app"], check=True, capture_output=True,
                   timeout=60)
    # 8 clients on 2 servers, sleeping in the transaction: servers stay active, clients wait.
    script = os.path.join(s.dir, "busy.sql")
    with open(script, "w") as f:
        f.write("BEGIN;\nSELECT pg_sleep(0.05);\nEND;\n")
    load = subprocess.Popen(pgbench + ["-n", "-c", "8", "-T", "20", "-f", script, "app"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    driver = browser()
    try:
        driver.get("http://127.0.0.1:%d/" % port)
        assert driver.title == "Shoal pools"
        nums = wait_until(lambda: [e.text for e in driver.find_elements("css selector",
                                                                         ".pool .nums")
                                   if "active 2" in e.text and "waiting 0" not in e.text],
                          10, interval=0.2, what="a pool with 2 active servers and waiters")
        assert "max 2" in nums[0]
        # One point per second: after a few polls the active line has length.
        wait_until(lambda: driver.execute_script(COUNT_ACTIVE_PIXELS) > 50, 10, interval=0.5,
                   what="the active line drawn")
        card = driver.find_element("css selector", ".pool")
        assert "saturated" in card.get_attribute("class")  # 8 clients on 2 servers wait
        legends = [e.text for e in card.find_elements("css selector", ".legend")]
        assert len(legends) == 3 and "pool_size" in legends[0] and "query p99" in legends[2]
        titles = [e.text for e in card.find_elements("css selector", "h3")]
        assert titles == ["Connections", "Throughput (/s)", "Latency (ms)"], titles
        canvas = card.find_element("css selector", "canvas.conns")
        assert canvas.size["width"] >= card.size["width"] - 40  # fills its card
        total = driver.find_element("css selector", ".total .kpis").text
        wait_until(lambda: re.search(r"^[1-9][0-9.k]*/s\ntransactions",
                                     driver.find_element("css selector",
                                                         ".total .kpis").text, re.M),
                   10, interval=0.5, what="transactions per second in the total card: " + total)
        assert "query p99" in total and " ms" in total
        # Shoal keeps the history: a reloaded page starts with the points it had, not one.
        before = wait_until(lambda: int(canvas.get_attribute("data-points")) >= 4
                            and int(canvas.get_attribute("data-points")), 12, interval=0.5,
                            what="four samples drawn")
        driver.refresh()
        wait_until(lambda: int(driver.find_element("css selector", ".pool canvas.conns")
                               .get_attribute("data-points") or 0) >= before, 5,
                   interval=0.1, what="the history back after a reload")
        wait_until(lambda: driver.execute_script(COUNT_ACTIVE_PIXELS) > 50, 5, interval=0.5,
                   what="the active line drawn after the reload")
        os.makedirs(ARTIFACTS, exist_ok=True)
        shot = os.path.join(ARTIFACTS, "dashboard.png")
        assert driver.save_screenshot(shot)
        assert os.path.getsize(shot) > 5000
    finally:
        driver.quit()
        load.terminate()
        out = load.communicate(timeout=20)[0]
    assert "ERROR" not in out.upper().replace("ERRORS: 0", ""), out
