"""Browser test of the drill-down, in headless Chromium: from the usage chart's bar
for today to that day's audit events, from a refusal code to its events, from an
agent to its page, from an API key to its usage, by clicking as a person would;
then a management key made on the keys page reads the same usage through the
management API until it is revoked there.

Usage: python3 cloud/tests/browser/test_drilldown.py  (needs chromium + chromium-driver)
Env: KALGUARD_CLOUD_BIN (default $CARGO_TARGET_DIR/debug/kalguard-cloud).
Screenshots go to $KALGUARD_TEST_OUTPUT/drilldown (default e2e-output/cloud-browser/drilldown).
"""

import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_dashboard import OUT, check  # noqa: E402
from webdriver import run_with_cloud  # noqa: E402

DRILL_OUT = os.path.join(OUT, "drilldown")


def shot(b, name):
    b.screenshot(os.path.join(DRILL_OUT, f"{name}.png"))


def report(base, key, events):
    body = json.dumps({"events": events}).encode()
    req = urllib.request.Request(base + "/api/v1/usage/report", data=body, method="POST",
                                 headers={"x-api-key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read())


def event(agent, decision, rid, code=None):
    e = {"eventType": "prompt_check", "agentId": agent, "decision": decision,
         "timestamp": int(time.time() * 1000), "requestId": rid}
    if code:
        e["errorCode"] = code
    return e


def manage_get(base, key, path):
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait_for(cond, what, timeout=10):
    deadline = time.time() + timeout
    while True:
        try:
            if cond():
                return
        except Exception:
            pass  # the page is being swapped
        check(time.time() < deadline, f"timed out waiting for {what}")
        time.sleep(0.1)


def audit_rows(b):
    return b.find_all("#events tr.event")


def journey(b, base):
    print("[1] sign up and report 1,500 allowed and 12 refused events", flush=True)
    b.get(base + "/signup")
    b.find("#org_name").type("Drill Org")
    b.find("#email").type("owner@drill.test")
    b.find("#password").type("correct horse battery")
    b.find("#signup").click()
    key = b.wait("#new-api-key").text.strip()
    events = [event("drill-bot", "allow", f"ok-{i}") for i in range(1500)]
    events += [event("drill-bot", "deny", f"pb-{i}", "PROMPT_BLOCKED") for i in range(9)]
    events += [event("other-bot", "deny", f"pd-{i}", "POLICY_DENY") for i in range(3)]
    answer = report(base, key, events)
    check(answer["accepted"] == 1512, f"report accepted: {answer}")

    print("[2] the usage page: thousands separators; today's bar opens today's events", flush=True)
    b.get(base + "/usage?days=7")
    check(b.find("#total-events").text == "1,512", f"total events card: {b.find('#total-events').text}")
    bars = b.find_all("a.bar-link")
    check(len(bars) == 7, f"seven bars: {len(bars)}")
    check(len(b.find_all("#usage-chart .axis-title")) == 2, "the chart names its axes")
    shot(b, "usage")
    b.find_all("a.bar-link g.bar rect.allowed")[-1].click()
    b.wait_url("/audit")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    check(b.url.endswith(f"/audit?from={today}&to={today}"), f"today's events: {b.url}")
    check(len(audit_rows(b)) == 50, "a page of today's events")
    check(b.find("#result-count").text == "1,512 events match.", f"the count: {b.find('#result-count').text}")
    first_ids = [r.find("td.request-id").text for r in audit_rows(b)]
    b.find("#next-page").click()
    wait_for(lambda: audit_rows(b)[0].find("td.request-id").text not in first_ids, "the next page")
    b.find("#previous-page").click()
    wait_for(lambda: [r.find("td.request-id").text for r in audit_rows(b)] == first_ids, "back to the first page")
    check(not b.find_all("#previous-page"), "the newest page has no previous page")
    shot(b, "audit-today")

    print("[3] a refusal code opens its events only", flush=True)
    b.get(base + "/usage?days=7")
    row = next(r for r in b.find_all("#by-code tbody tr") if r.find("td.code").text == "POLICY_DENY")
    row.find("a.drill").click()
    b.wait("#events")
    codes = {r.find("td.code").text for r in audit_rows(b)}
    check(len(audit_rows(b)) == 3 and codes == {"POLICY_DENY"}, f"POLICY_DENY events only: {codes}")

    print("[4] an agent's page, from the usage page's refusals by agent", flush=True)
    b.get(base + "/usage?days=7")
    row = next(r for r in b.find_all("#by-agent tbody tr") if r.find("td.agent").text == "drill-bot")
    row.find("a.drill").click()
    b.wait("#agent-id")
    check(b.find("#agent-checks").text == "1,509", f"its checks: {b.find('#agent-checks').text}")
    check(b.find("#agent-denied").text == "9", f"its denials: {b.find('#agent-denied').text}")
    check("PROMPT_BLOCKED" in b.find("#agent-by-code").text, "its refusal codes")
    check("POLICY_DENY" not in b.find("#agent-by-code").text, "not another agent's")
    shot(b, "agent")
    b.find("#agent-audit").click()
    b.wait("#events")
    agents = {r.find("td.agent").text for r in audit_rows(b)}
    check(agents == {"drill-bot"}, f"its audit events only: {agents}")

    print("[5] an API key's page: what its sidecars reported", flush=True)
    b.get(base + "/keys")
    check(b.find("tr.key td.key-events").text == "1,512", f"key events: {b.find('tr.key td.key-events').text}")
    b.find("tr.key a.key-link").click()
    b.wait("#key-events")
    check(b.find("#key-reports").text == "1", "one report")
    check(b.find("#key-checks").text == "1,512", f"its checks: {b.find('#key-checks').text}")
    shot(b, "key")

    print("[6] a viewer management key reads the same usage through the API, until revoked", flush=True)
    b.get(base + "/keys")
    b.find("#manage-key-name").type("nightly export")
    b.find("#create-manage-key").click()
    mgmt = b.wait("#new-manage-key").text.strip()
    check(mgmt.startswith("kg_mgmt_"), "the management key is shown once")
    check(b.find("#manage-keys td.role").text == "viewer", "viewer by default")
    status, usage = manage_get(base, mgmt, "/api/v1/manage/usage?days=7")
    check(status == 200 and usage["total"]["checks"] == 1512, f"usage through the API: {status} {usage.get('total')}")
    b.find("#manage-keys button.revoke-manage").click()
    b.wait("#confirm").click()
    check("Management key revoked" in b.wait("#notice").text, "revoked after the confirmation")
    check(manage_get(base, mgmt, "/api/v1/manage/usage")[0] == 401, "refused once revoked")

    print("[7] logged out, an agent page asks for a login and then opens", flush=True)
    b.find("#logout").click()
    b.wait_url("/login")
    b.get(base + "/agent?id=drill-bot&days=7")
    b.wait_url("/login")
    b.find("#email").type("owner@drill.test")
    b.find("#password").type("correct horse battery")
    b.find("#login").click()
    b.wait_url("/agent")
    check(b.find("#agent-id").text == "drill-bot" and b.url.endswith("/agent?id=drill-bot&days=7"),
          f"back on the page asked for: {b.url}")


def main():
    run_with_cloud(DRILL_OUT, journey)
    print(f"PASS: drill-down from chart, codes, agents and keys; screenshots in {DRILL_OUT}")


if __name__ == "__main__":
    main()
