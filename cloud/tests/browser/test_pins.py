"""Browser test of the Tools page, in headless Chromium: MCP tools a control
plane holds back (reported over the API as `kalguard serve` relays them)
appear on the page with odd names escaped, and the count of those its report
left out; the owner approves one and the control plane's held poll hears it
within seconds, forgets the other after a confirmation page; both move to
Decided, the admin log names them, and the page fits a 1280 px window
and a 375 px phone.

Usage: python3 cloud/tests/browser/test_pins.py  (needs chromium + chromium-driver)
Env: KALGUARD_CLOUD_BIN (default $CARGO_TARGET_DIR/debug/kalguard-cloud).
Screenshots go to $KALGUARD_TEST_OUTPUT/pins (default e2e-output/cloud-browser/pins).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_approvals import call, fits, notice, poll_while, sign_up  # noqa: E402
from test_dashboard import OUT, check  # noqa: E402
from webdriver import run_with_cloud  # noqa: E402

PINS_OUT = os.path.join(OUT, "pins")
PINNED = "1" * 64
OFFERED = "2" * 64


def shot(b, name):
    b.screenshot(os.path.join(PINS_OUT, f"{name}.png"))


def held(tool, kind="changed", why=None):
    t = {"server": "/mcp", "tool": tool, "held": kind, "offeredSha256": OFFERED,
         "heldSinceMs": int(time.time() * 1000)}
    if kind == "changed":
        t["pinnedSha256"] = PINNED
        t["fieldsChanged"] = ["inputSchema"]
    if why:
        t["why"] = why
    return t


def journey(b, base):
    print("[1] sign up; a control plane reports two held tools", flush=True)
    key = sign_up(b, base, "Tools Org", "owner@tools.test")
    report = {"sidecarId": "sc_browser", "host": "pod-7", "leftOut": 1234, "held": [
        held("delete_repo"),
        held("read_fi\u200ble<b>", "suspicious", "its name has characters outside A-Z"),
    ]}
    check(call(base, "POST", "/api/v1/pins", key, report) == {"decisions": []}, "reported")
    b.find('nav a[href="/tools"]').click()
    rows = b.find_all("#held tr.held-tool")
    check(len(rows) == 2, f"{len(rows)} held rows")
    by_tool = {r.find("td.tool").text: r for r in rows}
    check("delete_repo" in by_tool, f"tools: {list(by_tool)}")
    odd = "read_fi\\u{200b}le<b>"
    check(odd in by_tool, f"the odd name shown escaped: {list(by_tool)}")
    check("changed: inputSchema" in by_tool["delete_repo"].text, by_tool["delete_repo"].text)
    left = b.find_all("#left-out tr.left-out")
    check(len(left) == 1 and "pod-7 (sc_browser)" in left[0].text
          and left[0].find("td.count").text == "1,234", f"left out: {[r.text for r in left]}")
    check(fits(b, 1280), "the page fits a 1280 px window")
    shot(b, "held")

    print("[2] approve: the held poll hears it within seconds", flush=True)
    def approve():
        by_tool["delete_repo"].find("button.approve").click()
        notice(b, "Approved")

    answer, took = poll_while(base, "/api/v1/pins/decisions?sidecarId=sc_browser&wait=20", key, approve)
    decisions = answer.get("decisions", [])
    check(len(decisions) == 1 and decisions[0]["tool"] == "delete_repo"
          and decisions[0]["action"] == "approve" and decisions[0]["offeredSha256"] == OFFERED,
          f"poll: {decisions}")
    check(took < 5, f"heard {took:.1f}s after the click")
    print(f"     the poll answered {took:.2f}s after the click", flush=True)

    print("[3] forget the other, confirmed; both in Decided; settled by the control plane", flush=True)
    b.find("#held tr.held-tool button.forget").click()
    # A page of its own says what forgetting does; nothing is decided before.
    check("trusted on first use" in b.wait("#confirm-message").text, "the confirmation says what it does")
    shot(b, "forget-confirm")
    b.find("#confirm").click()
    notice(b, "Forgotten")
    check(not b.find_all("#held tr.held-tool"), "nothing held")
    call(base, "POST", f"/api/v1/pins/decisions/{decisions[0]['id']}/settle?sidecarId=sc_browser", key, {"outcome": "applied"})
    b.get(base + "/tools")
    decided = {r.find("td.tool").text: r for r in b.find_all("#decided tr.decided-tool")}
    check(set(decided) == {"delete_repo", odd}, f"decided: {list(decided)}")
    check(decided["delete_repo"].find("td.outcome").text == "applied", decided["delete_repo"].text)
    check(decided[odd].find("td.decision").text == "forget", decided[odd].text)
    check(decided[odd].find("td.by").text == "owner@tools.test", decided[odd].text)
    shot(b, "decided")
    check(fits(b, 375), "no sideways scroll on a phone")
    shot(b, "phone")
    b.resize(1280, 1000)

    print("[4] the admin log names both decisions", flush=True)
    b.get(base + "/admin-log")
    log = b.source
    check("mcp_tool.approved" in log and "mcp_tool.forgotten" in log, "admin log entries")


def main():
    run_with_cloud(PINS_OUT, journey)
    print(f"PASS: MCP tools decided on the Tools page; screenshots in {PINS_OUT}")


if __name__ == "__main__":
    main()
