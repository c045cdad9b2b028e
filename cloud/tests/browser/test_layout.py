"""Layout test of the KalGuard Cloud dashboard in headless Chromium (1280 px wide):
the custom-expiry amount is a short box. Screenshots go to
$KALGUARD_TEST_OUTPUT/layout (default: e2e-output/cloud-browser/layout).

Usage: python3 cloud/tests/browser/test_layout.py  (needs chromium + chromium-driver)
Env: KALGUARD_CLOUD_BIN (default $CARGO_TARGET_DIR/debug/kalguard-cloud).
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webdriver import Browser  # noqa: E402
from test_dashboard import BIN, OUT, check, free_port, wait_http  # noqa: E402

LAYOUT_OUT = os.path.join(OUT, "layout")


def layout(b, base):
    b.get(base + "/signup")
    b.find("#org_name").type("O" * 100)
    b.find("#email").type("owner@layout.test")
    b.find("#password").type("correct horse battery")
    b.find("#signup").click()
    b.wait("#new-api-key")

    b.get(base + "/tokens")
    b.screenshot(os.path.join(LAYOUT_OUT, "token-form.png"))
    width = b.script("return document.getElementById('token-custom-amount').getBoundingClientRect().width")
    problems = []
    if width >= 150:
        problems.append(f"the custom-expiry amount is {width:.0f} px wide, not a short box")
    check(not problems, "\n".join(problems))


def main():
    os.makedirs(LAYOUT_OUT, exist_ok=True)
    if not os.path.exists(BIN):
        raise SystemExit(f"FAIL: {BIN} not built (cargo build -p kalguard-cloud)")
    port, dport = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    data = tempfile.mkdtemp(prefix="kalguard-cloud-layout-")
    env = dict(os.environ)
    env.pop("KALGUARD_CLOUD_DATABASE_URL", None)
    log = open(os.path.join(LAYOUT_OUT, "cloud.log"), "w")
    cloud = subprocess.Popen([BIN, "--data-dir", data, "serve", "--addr", f"127.0.0.1:{port}",
                              "--public-url", base], stdout=log, stderr=log, env=env)
    driver = subprocess.Popen(["chromedriver", f"--port={dport}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    b = None
    try:
        wait_http(base + "/healthz", "kalguard-cloud")
        wait_http(f"http://127.0.0.1:{dport}/status", "chromedriver")
        b = Browser(f"http://127.0.0.1:{dport}")
        layout(b, base)
    finally:
        if b is not None:
            b.quit()
        for p in (driver, cloud):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)
    print(f"PASS: layout; screenshots in {LAYOUT_OUT}")


if __name__ == "__main__":
    main()
