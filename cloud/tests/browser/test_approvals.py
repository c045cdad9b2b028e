"""Browser test of the Approvals page, in headless Chromium: a control plane's
relayed approvals (filed over the API as `kalguard serve` relays them) appear
on the page; the owner approves one "for 10 minutes" and the control plane's
held poll hears it within seconds, denies the other with a reason; both move
to Ended with who decided, the admin log names them, and the page fits a
1280 px window and a 375 px phone.

Usage: python3 cloud/tests/browser/test_approvals.py  (needs chromium + chromium-driver)
Env: KALGUARD_CLOUD_BIN (default $CARGO_TARGET_DIR/debug/kalguard-cloud).
Screenshots go to $KALGUARD_TEST_OUTPUT/approvals (default e2e-output/cloud-browser/approvals).
"""

import json
import os
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_dashboard import OUT, check  # noqa: E402
from webdriver import WebDriverError, run_with_cloud  # noqa: E402

APPROVALS_OUT = os.path.join(OUT, "approvals")
HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def shot(b, name):
    b.screenshot(os.path.join(APPROVALS_OUT, f"{name}.png"))


def call(base, method, path, key, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"x-api-key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


def relay(base, key, approval_id, tool):
    call(base, "POST", "/api/v1/approvals", key, {"id": approval_id, "request": {
        "nonce": f"n-{approval_id}", "requestId": f"req_{approval_id}", "agentId": "billing-bot",
        "action": "tool:execute", "route": "/mcp", "tool": tool, "argumentsSha256": HASH,
        "ruleId": "payments", "policyVersion": "7", "reason": "payments need a human",
        "expiresAtMs": int(time.time() * 1000) + 120_000}})


def notice(b, word, timeout=10):
    """Waits for the page after a form to say `word` (the page before it may still show
    the last action's notice)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if any(word in n.text for n in b.find_all("#notice")):
                return
        except WebDriverError:
            pass  # the old page went while it was read
        time.sleep(0.1)
    raise AssertionError(f"no notice saying {word!r} on {b.url}")


def sign_up(b, base, org_name, email):
    """Signs up through the form; returns the organisation's first API key."""
    b.get(base + "/signup")
    b.find("#org_name").type(org_name)
    b.find("#email").type(email)
    b.find("#password").type("correct horse battery")
    b.find("#signup").click()
    return b.wait("#new-api-key").text.strip()


def poll_while(base, path, key, act):
    """Holds a control plane's poll on `path` open, runs `act` half a second in
    (a click), and returns what the poll answered and how long after `act` began."""
    heard = {}

    def poll():
        heard["answer"] = call(base, "GET", path, key)
        heard["at"] = time.monotonic()

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)
    started = time.monotonic()
    act()
    poller.join(timeout=25)
    return heard.get("answer", {}), heard.get("at", float("inf")) - started


def fits(b, width):
    b.resize(width, 900)
    return b.script("return document.documentElement.scrollWidth <= window.innerWidth;")


def journey(b, base):
    print("[1] sign up; a control plane relays two approvals", flush=True)
    key = sign_up(b, base, "Approvals Org", "owner@approvals.test")
    relay(base, key, "ap_pay", "send_payment")
    relay(base, key, "ap_wire", "wire_transfer")
    b.get(base + "/approvals")
    rows = b.find_all("#pending tr.approval")
    check([r.attr("data-approval-id") for r in rows] == ["ap_pay", "ap_wire"], "both wait, oldest first")
    check("tool:execute send_payment" in rows[0].text and "payments need a human" in rows[0].text, rows[0].text)
    check(fits(b, 1280), "the page fits a 1280 px window")
    shot(b, "waiting")

    print("[2] approve for 10 minutes: the held poll hears it within seconds", flush=True)
    row = b.find('#pending tr[data-approval-id="ap_pay"]')
    row.find("input.for-minutes").type("10")

    def approve():
        row.find("button.approve").click()
        notice(b, "Approved")

    outcome, took = poll_while(base, "/api/v1/approvals/ap_pay?wait=20", key, approve)
    check(outcome.get("status") == "approved" and outcome.get("forMinutes") == 10, f"poll: {outcome}")
    check(outcome.get("by") == "owner@approvals.test", f"by: {outcome}")
    check(took < 5, f"heard {took:.1f}s after the click")
    print(f"     the poll answered {took:.2f}s after the click", flush=True)

    print("[3] deny the other with a reason; both in Ended with who decided", flush=True)
    row = b.find('#pending tr[data-approval-id="ap_wire"]')
    row.find("input.deny-reason").type("not this vendor")
    row.find("button.deny").click()
    notice(b, "Denied")
    check(not b.find_all("#pending tr.approval"), "nothing waits")
    ended = {r.attr("data-approval-id"): r for r in b.find_all("#ended tr.approval")}
    check(set(ended) == {"ap_pay", "ap_wire"}, f"ended: {list(ended)}")
    check("approved, and the same calls for 10 minutes" in ended["ap_pay"].find("td.status").text,
          ended["ap_pay"].text)
    check(ended["ap_wire"].find("td.by").text == "owner@approvals.test (Cloud)", ended["ap_wire"].text)
    check(ended["ap_wire"].find("td.decision-reason").text == "not this vendor", ended["ap_wire"].text)
    check(call(base, "GET", "/api/v1/approvals/ap_wire", key)["reason"] == "not this vendor", "the poll reads the reason")
    shot(b, "ended")
    check(fits(b, 375), "no sideways scroll on a phone")
    shot(b, "phone")
    b.resize(1280, 1000)

    print("[4] the admin log names both decisions", flush=True)
    b.get(base + "/admin-log")
    log = b.source
    check("approval.approved" in log and "approval.denied" in log and "ap_wire" in log, "admin log entries")


def main():
    run_with_cloud(APPROVALS_OUT, journey)
    print(f"PASS: approvals decided on the Approvals page; screenshots in {APPROVALS_OUT}")


if __name__ == "__main__":
    main()
