"""Browser test of the KalGuard Cloud dashboard in headless Chromium.

Starts `kalguard-cloud serve` (fresh SQLite) and chromedriver on free loopback
ports, then walks the journey a person takes: sign up and read the first key,
see the usage chart match the reported counts, create an access token and read
it once, revoke it, search and page through the audit log, export CSV,
quarantine an agent, log out. A screenshot of every page goes to
$KALGUARD_TEST_OUTPUT (default: e2e-output/cloud-browser).

Usage: python3 cloud/tests/browser/test_dashboard.py  (needs chromium + chromium-driver)
Env: KALGUARD_CLOUD_BIN (default $CARGO_TARGET_DIR/debug/kalguard-cloud).
"""

import hashlib
import json
import os
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webdriver import REPO, run_with_cloud  # noqa: E402

OUT = os.path.abspath(os.environ.get("KALGUARD_TEST_OUTPUT", os.path.join(REPO, "e2e-output", "cloud-browser")))


def api(base, path, key, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"x-api-key": key, "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read())


step_no = 0


def step(name):
    global step_no
    step_no += 1
    print(f"[{step_no:02d}] {name}", flush=True)


def shot(b, name):
    b.screenshot(os.path.join(OUT, f"{step_no:02d}-{name}.png"))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def journey(b, base, secrets):
    step("sign up")
    b.get(base + "/signup")
    shot(b, "signup")
    b.find("#org_name").type("Browser Test Org")
    b.find("#email").type("owner@browser.test")
    b.find("#password").type("correct horse battery")
    b.find("#signup").click()
    key = b.wait("#new-api-key").text.strip()
    check(key.startswith("kg_live_"), f"first key shown: {key!r}")
    shot(b, "welcome-first-key")
    b.get(base + "/keys")
    check(key not in b.source, "the key is shown only once")
    shot(b, "keys")

    step("report usage through the sidecar API")
    now = datetime.now(timezone.utc)
    plan = [  # (days ago, agent, decision, error code, count)
        (0, "agent-a", "allow", None, 40), (0, "agent-b", "deny", "PROMPT_BLOCKED", 25),
        (0, "agent-c", "deny", "CAPABILITY_DENIED", 15), (1, "agent-a", "allow", None, 12),
        (3, "agent-c", "deny", "POLICY_DENY", 9), (6, "agent-b", "allow", None, 4),
    ]
    events, expected = [], {}
    n = 0
    for ago, agent, decision, code, count in plan:
        day = (now - timedelta(days=ago)).strftime("%Y-%m-%d")
        checks, denied = expected.get(day, (0, 0))
        expected[day] = (checks + count, denied + (count if decision != "allow" else 0))
        for _ in range(count):
            n += 1
            ts = now - timedelta(days=ago, seconds=n)
            e = {"eventType": "prompt_check", "agentId": agent, "decision": decision,
                 "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "requestId": f"req-{n:04d}"}
            if code:
                e["metadata"] = {"errorCode": code}
            events.append(e)
    answer = api(base, "/api/v1/usage/report", key,
                 {"batchId": "browser-1", "events": events, "sidecarId": "browser-pod", "version": "0.1.0", "mode": "cloud"})
    check(answer["counted"] == len(events), f"all events counted: {answer}")

    step("usage chart bars match the counts")
    b.get(base + "/usage?days=7")
    shot(b, "usage-7d")
    bars = b.find_all("#usage-chart g.bar")
    check(len(bars) == 7, f"7 bars, got {len(bars)}")
    heights = {}
    for bar in bars:
        day = bar.attr("data-day")
        got = (int(bar.attr("data-checks")), int(bar.attr("data-denied")))
        want = expected.get(day, (0, 0))
        check(got == want, f"bar {day}: {got} != {want}")
        h = sum(float(r.attr("height")) for r in bar.find_all("rect"))
        heights[day] = h
    top = max(expected.values())[0]
    tallest = max(heights.values())
    for day, (checks, _) in expected.items():
        check(abs(heights[day] / tallest - checks / top) < 0.01, f"bar height of {day} is proportional")
    check(b.find("#total-checks").text == str(sum(c for c, _ in expected.values())), "total checks card")
    check("PROMPT_BLOCKED" in b.find("#by-code").text, "denials by code listed")
    b.get(base + "/usage?days=90")
    check(len(b.find_all("#usage-chart g.bar")) == 90, "90-day chart")
    shot(b, "usage-90d")

    step("active agents and sidecars")
    b.get(base + "/agents")
    agents_text = b.find("#agents").text
    check(all(a in agents_text for a in ["agent-a", "agent-b", "agent-c"]), agents_text)
    shot(b, "agents")
    b.get(base + "/sidecars")
    check("browser-pod" in b.find("#sidecars").text, "sidecar listed")
    shot(b, "sidecars")

    step("create an access token and read it once")
    b.get(base + "/tokens")
    b.find("#token-name").type("support bot")
    b.find("#token-agent").type("support-bot")
    b.find('input[name="capability"][value="tool:execute"]').click()
    b.find('input[name="expiry"][value="1h"]').click()
    b.find("#create-token").click()
    token = b.wait("#new-token").text.strip()
    check(token.count(".") == 2, f"a JWT: {token[:20]}…")
    check(b.find("#new-token-env").text.strip() == f"KALGUARD_AGENT_TOKEN={token}", "env line")
    shot(b, "token-created")
    b.get(base + "/tokens")
    check(token not in b.source, "the token is not shown again")

    step("revoke the token")
    row = b.find("tr.token")
    check("support-bot" in row.text, row.text)
    row.find("button.revoke").click()
    # The confirmation is a page of its own (no JavaScript dialog): nothing is
    # revoked until its button is pressed.
    b.wait("#confirm")
    check("Revoke this token?" in b.source, "asked first")
    shot(b, "token-revoke-confirm")
    lic = api(base, "/api/v1/license/validate", key, {})
    check(hashlib.sha256(token.encode()).hexdigest() not in lic["revokedTokenHashes"], "not revoked before confirming")
    b.find("#confirm").click()
    check("Token revoked" in b.wait("#notice").text, "revocation notice")
    shot(b, "token-revoked")
    lic = api(base, "/api/v1/license/validate", key, {})
    check(hashlib.sha256(token.encode()).hexdigest() in lic["revokedTokenHashes"], "revoked hash in license")

    step("search and page through the audit log")
    # The pager and the filter form are htmx-boosted (the body is swapped in place),
    # so rows are read with one script call each time instead of element handles.
    read_ids = "return Array.from(document.querySelectorAll('td.request-id')).map(e => e.textContent)"
    b.get(base + "/audit")
    seen = []
    page = 0
    while True:
        page += 1
        ids = b.script(read_ids)
        want = min(50, len(events) - len(seen))
        check(len(ids) == want, f"page {page}: {len(ids)} rows, want {want}")
        seen += ids
        shot(b, f"audit-page-{page}")
        if not b.script("return !!document.getElementById('next-page')"):
            break
        b.script("document.getElementById('next-page').click()")
        deadline = time.time() + 10
        while (b.script(read_ids) or [None])[0] == ids[0]:
            check(time.time() < deadline, "next page loaded")
            time.sleep(0.1)
    check(len(seen) == len(events) and len(set(seen)) == len(events), f"every event once: {len(seen)}")
    check("cursor=" in b.url, f"the pager's URL is pushed to the address bar: {b.url}")
    b.get(base + "/audit")
    b.find("#f-agent").type("agent-c")
    b.script("document.getElementById('f-decision').value = 'deny';")
    b.find("#search").click()
    deadline = time.time() + 10
    while "agent=agent-c" not in b.url:
        check(time.time() < deadline, "search submitted")
        time.sleep(0.1)
    time.sleep(0.3)
    rows = b.script("return Array.from(document.querySelectorAll('tr.event')).map(e => e.textContent)")
    check(len(rows) == 24, f"agent-c denials: {len(rows)}")
    check(all("agent-c" in r for r in rows), "only agent-c")
    shot(b, "audit-filtered")

    step("export CSV")
    href = b.find("#export-csv").attr("href")
    if href.startswith("/"):
        href = base + href
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in b.cookies())
    with urllib.request.urlopen(urllib.request.Request(href, headers={"cookie": cookie}), timeout=10) as res:
        csv = res.read().decode()
    lines = csv.strip().splitlines()
    check(lines[0].startswith('"time","type","agent"'), lines[0])
    check(len(lines) == 25 and all('"agent-c"' in l for l in lines[1:]), f"CSV rows: {len(lines)}")
    with open(os.path.join(OUT, "audit-agent-c.csv"), "w") as f:
        f.write(csv)

    step("quarantine an agent")
    for i in range(2):
        b.get(base + "/tokens")
        b.find("#token-name").type(f"rogue {i}")
        b.find("#token-agent").type("rogue-agent")
        b.find("#create-token").click()
        b.wait("#new-token")
    b.get(base + "/tokens")
    b.script("document.getElementById('quarantine-agent').value = 'rogue-agent';")
    b.find("#quarantine").click()
    check("rogue-agent" in b.wait("#confirm-message").text, "the confirmation names the agent")
    b.find("#confirm").click()
    notice = b.wait("#notice").text
    check("2 token(s) revoked" in notice, notice)
    shot(b, "quarantined")
    lic = api(base, "/api/v1/license/validate", key, {})
    check(len(lic["revokedTokenHashes"]) == 3, f"3 revoked hashes: {len(lic['revokedTokenHashes'])}")

    step("the admin log records who did it, in an intact chain")
    b.get(base + "/admin-log")
    actions = b.script("return Array.from(document.querySelectorAll('td.action')).map(e => e.textContent)")
    for action in ["org.created", "token.created", "token.revoked", "agent.quarantined"]:
        check(action in actions, f"{action} in the admin log: {actions}")
    check("Hash chain intact" in b.find("#chain").text, b.find("#chain").text)
    shot(b, "admin-log")

    step("billing, members")
    b.get(base + "/billing")
    check(b.find("#current-plan").text == "free", "free plan")
    shot(b, "billing")
    b.get(base + "/members")
    check("owner@browser.test" in b.find("#members").text, "owner listed")
    shot(b, "members")

    secrets.extend([key, token, "correct horse battery"])

    step("log out")
    b.find("#logout").click()
    b.wait_url("/login")
    b.get(base + "/keys")
    check(b.url.endswith("/login?next=%2Fkeys"), f"logged out for real, asked to log in for the page: {b.url}")
    shot(b, "logged-out")


def main():
    secrets = []
    run_with_cloud(OUT, lambda b, base: journey(b, base, secrets), env={"KALGUARD_CLOUD_LOG": "info"},
                   on_failure=lambda b: shot(b, "failure"))
    with open(os.path.join(OUT, "cloud.log")) as f:
        logged = f.read()
    check("organisation signed up" in logged, "the Cloud logged the journey")
    for secret in secrets:
        check(secret not in logged, f"a secret ({secret[:10]}…) appears in the Cloud's log")
    print(f"PASS: browser journey ({step_no} steps, no secret in the log); screenshots in {OUT}")


if __name__ == "__main__":
    main()
