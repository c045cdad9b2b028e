"""A minimal W3C WebDriver client over urllib: enough to drive headless Chromium
through chromedriver without any package beyond the standard library; and the
harness every dashboard test shares (`run_with_cloud`): a fresh Cloud and
chromedriver on free ports, a screenshot when the journey fails, everything
stopped and removed after."""

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
BIN = os.environ.get("KALGUARD_CLOUD_BIN", os.path.join(TARGET, "debug", "kalguard-cloud"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"FAIL: {what} did not answer at {url} within {timeout}s")


def run_with_cloud(out_dir, journey, serve_args=(), javascript=True, env=None, on_failure=None):
    """Starts `kalguard-cloud serve` on a fresh SQLite data dir (its log in
    `out_dir/cloud.log`) and chromedriver, runs `journey(browser, base_url)`,
    and on an exception saves a screenshot (`on_failure(browser)`, else
    `out_dir/failure.png`) before raising it again. Everything started is
    stopped, and the data dir removed, whatever happens. Returns what the
    journey returns."""
    os.makedirs(out_dir, exist_ok=True)
    if not os.path.exists(BIN):
        raise SystemExit(f"FAIL: {BIN} not built (cargo build -p kalguard-cloud)")
    port, dport = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    data = tempfile.mkdtemp(prefix="kalguard-cloud-browser-")
    log = open(os.path.join(out_dir, "cloud.log"), "w")
    cloud_env = dict(os.environ, **(env or {}))
    cloud_env.pop("KALGUARD_CLOUD_DATABASE_URL", None)
    cloud = subprocess.Popen([BIN, "--data-dir", data, "serve", "--addr", f"127.0.0.1:{port}",
                              "--public-url", base, *serve_args], stdout=log, stderr=log, env=cloud_env)
    driver = subprocess.Popen(["chromedriver", f"--port={dport}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    b = None
    try:
        wait_http(base + "/healthz", "kalguard-cloud")
        wait_http(f"http://127.0.0.1:{dport}/status", "chromedriver")
        b = Browser(f"http://127.0.0.1:{dport}", javascript=javascript)
        return journey(b, base)
    except Exception:
        if b is not None:
            try:
                if on_failure is not None:
                    on_failure(b)
                else:
                    b.screenshot(os.path.join(out_dir, "failure.png"))
            except Exception:
                pass
        raise
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

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriverError(Exception):
    pass


class Browser:
    def __init__(self, driver_url, headless=True, javascript=True):
        self.base = driver_url.rstrip("/")
        args = ["--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000", "--disable-gpu"]
        if headless:
            args.append("--headless=new")
        options = {"binary": "/usr/bin/chromium", "args": args}
        if not javascript:
            # Pages must work for people who turn scripts off.
            options["prefs"] = {"profile.managed_default_content_settings.javascript": 2}
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
        }}}
        value = self._call("POST", "/session", caps)
        self.session = value["sessionId"]

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                payload = json.loads(res.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise WebDriverError(f"{method} {path}: {e.code} {e.read()[:500]!r}") from None
        return payload.get("value")

    def _s(self, method, path, body=None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url):
        self._s("POST", "/url", {"url": url})

    @property
    def url(self):
        return self._s("GET", "/url")

    @property
    def source(self):
        return self._s("GET", "/source")

    def find(self, css):
        return Element(self, self._s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT])

    def find_all(self, css):
        found = self._s("POST", "/elements", {"using": "css selector", "value": css})
        return [Element(self, e[ELEMENT]) for e in found]

    def wait(self, css, timeout=10):
        """The first element matching `css`, once the page (after a navigation) shows it."""
        deadline = time.time() + timeout
        while True:
            found = self.find_all(css)
            if found:
                return found[0]
            if time.time() > deadline:
                raise WebDriverError(f"{css} did not appear within {timeout}s on {self.url}")
            time.sleep(0.1)

    def wait_url(self, suffix, timeout=10):
        deadline = time.time() + timeout
        while not self.url.split("?")[0].endswith(suffix):
            if time.time() > deadline:
                raise WebDriverError(f"URL {self.url} did not become …{suffix}")
            time.sleep(0.1)

    def resize(self, width, height):
        """Sets the window's outer size (the page's width is `window.innerWidth`)."""
        self._s("POST", "/window/rect", {"width": width, "height": height})

    def script(self, js, *args):
        return self._s("POST", "/execute/sync", {"script": js, "args": list(args)})

    def cookies(self):
        return self._s("GET", "/cookie")

    def screenshot(self, path):
        png = base64.b64decode(self._s("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)

    def quit(self):
        try:
            self._s("DELETE", "")
        except WebDriverError:
            pass


class Element:
    def __init__(self, browser, eid):
        self.b = browser
        self.id = eid

    def click(self):
        self.b._s("POST", f"/element/{self.id}/click", {})

    def type(self, text):
        self.b._s("POST", f"/element/{self.id}/clear", {})
        self.b._s("POST", f"/element/{self.id}/value", {"text": text})

    @property
    def text(self):
        return self.b._s("GET", f"/element/{self.id}/text")

    def attr(self, name):
        return self.b._s("GET", f"/element/{self.id}/attribute/{name}")

    def find(self, css):
        return Element(self.b, self.b._s("POST", f"/element/{self.id}/element",
                                         {"using": "css selector", "value": css})[ELEMENT])

    def find_all(self, css):
        found = self.b._s("POST", f"/element/{self.id}/elements", {"using": "css selector", "value": css})
        return [Element(self.b, e[ELEMENT]) for e in found]
