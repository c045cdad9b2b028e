"""Browser test of alerts, in headless Chromium: an admin adds a webhook on the
Alerts page (the secret is shown once), sends a test, then a denial spike reported
by a sidecar reaches the webhook within seconds; the receiver checks each body's
Slack `text` and its signature, and the delivery log shows both deliveries.

Usage: python3 cloud/tests/browser/test_alerts.py  (needs chromium + chromium-driver)
Env: KALGUARD_CLOUD_BIN (default $CARGO_TARGET_DIR/debug/kalguard-cloud).
Screenshots go to $KALGUARD_TEST_OUTPUT/alerts (default e2e-output/cloud-browser/alerts).
"""

import hashlib
import hmac
import http.server
import json
import os
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_dashboard import OUT, check  # noqa: E402
from webdriver import run_with_cloud  # noqa: E402

ALERTS_OUT = os.path.join(OUT, "alerts")
RECEIVED = []


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        RECEIVED.append((self.headers["x-kalguard-signature"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def signed(sig, body, secret):
    parts = dict(p.split("=", 1) for p in sig.split(","))
    mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"])


def shot(b, name):
    b.screenshot(os.path.join(ALERTS_OUT, f"{name}.png"))


def report(base, key, events):
    req = urllib.request.Request(base + "/api/v1/usage/report", data=json.dumps({"events": events}).encode(),
                                 method="POST", headers={"x-api-key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read())


def journey(b, base, hook_url):
    print("[1] sign up; add a webhook for 3 denials in 5 minutes", flush=True)
    b.get(base + "/signup")
    b.find("#org_name").type("Alert Org")
    b.find("#email").type("owner@alerts.test")
    b.find("#password").type("correct horse battery")
    b.find("#signup").click()
    key = b.wait("#new-api-key").text.strip()
    b.get(base + "/alerts")
    b.find("#hook-url").type(hook_url)
    b.find("#hook-spike").type("3")
    b.find("#hook-quota").click()
    b.find("#add-hook-button").click()
    secret = b.wait("#new-hook-secret").text.strip()
    check(secret.startswith("whsec_kg_"), "the signing secret is shown once")
    check("3 denials within 5 minutes" in b.find("#hooks").text, b.find("#hooks").text)
    shot(b, "added")

    print("[2] send a test: delivered, signed, Slack text", flush=True)
    b.find("#hooks button.test").click()
    check("Test sent" in b.wait("#notice").text, "the page says the test was sent")
    check(b.find("#deliveries tr.delivery td.status").text == "delivered", b.find("#deliveries").text)
    check(len(RECEIVED) == 1 and signed(*RECEIVED[0], secret), "the test arrived, correctly signed")
    check("test alert" in json.loads(RECEIVED[0][1])["text"], "Slack text")

    print("[3] a denial spike reaches the webhook within seconds", flush=True)
    events = [{"eventType": "prompt_check", "agentId": "spiky", "decision": "deny", "errorCode": "PROMPT_BLOCKED",
               "timestamp": int(time.time() * 1000), "requestId": f"s-{i}"} for i in range(4)]
    report(base, key, events)
    reported = time.monotonic()
    while not any(json.loads(body)["kind"] == "denial_spike" for _, body in RECEIVED):
        check(time.monotonic() - reported < 10, "the spike alert within 10 s")
        time.sleep(0.2)
    print(f"     spike alert received {time.monotonic() - reported:.1f}s after the report", flush=True)
    sig, body = RECEIVED[-1]
    check(signed(sig, body, secret), "the spike alert is signed")
    check("4 requests denied" in json.loads(body)["text"], json.loads(body)["text"])
    b.get(base + "/alerts")
    kinds = [r.find("td.kind").text for r in b.find_all("#deliveries tr.delivery")]
    # Newest first to the second: two queued in the same second may come either way.
    check(sorted(kinds) == ["denial_spike", "test"], f"delivery log: {kinds}")
    shot(b, "log")


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        run_with_cloud(ALERTS_OUT, lambda b, base: journey(b, base, hook_url),
                       serve_args=["--alert-interval-secs", "1", "--alert-allow-private-targets"])
    finally:
        server.shutdown()
    print(f"PASS: alert webhooks from the Alerts page; screenshots in {ALERTS_OUT}")


if __name__ == "__main__":
    main()
