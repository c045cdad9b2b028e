"""Layout test of the KalGuard Cloud dashboard in headless Chromium, 1280 px wide
and 375 px wide (a phone).

The longest values each field accepts, without a space to break at (a 256-character
agent ID from the sidecar API, a 128-character one from the token form, 128-character
request and sidecar IDs, 100-character token and key names, a 64-character error
code, a long webhook URL, the 1,024-character texts of a relayed approval), must not
push any page wider than the window: at 1280 px no element passes its right edge; at
375 px the page does not scroll sideways
(`document.documentElement.scrollWidth <= 375`: tables scroll inside their own box,
the navigation wraps). The custom-expiry amount is a short box. Screenshots go to
$KALGUARD_TEST_OUTPUT/layout (default: e2e-output/cloud-browser/layout).

Usage: python3 cloud/tests/browser/test_layout.py  (needs chromium + chromium-driver)
Env: KALGUARD_CLOUD_BIN (default $CARGO_TARGET_DIR/debug/kalguard-cloud).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webdriver import run_with_cloud  # noqa: E402
from test_dashboard import OUT, api, check  # noqa: E402

LAYOUT_OUT = os.path.join(OUT, "layout")

# Every element whose right edge passes the window, as "tag#id.class (right px)".
OVERFLOW = """
const w = window.innerWidth;
const out = [];
if (document.documentElement.scrollWidth > w) out.push('page ' + document.documentElement.scrollWidth);
for (const e of document.querySelectorAll('body *')) {
  const r = e.getBoundingClientRect();
  if (r.width > 0 && r.right > w + 1) out.push(e.tagName + '#' + e.id + '.' + e.className + ' (' + Math.round(r.right) + ')');
}
return out.slice(0, 10);
"""


def layout(b, base):
    b.get(base + "/signup")
    b.find("#org_name").type("O" * 100)
    b.find("#email").type("owner@layout.test")
    b.find("#password").type("correct horse battery")
    b.find("#signup").click()
    key = b.wait("#new-api-key").text.strip()

    long_agent = "a" * 256
    events = [
        {"eventType": "prompt_check", "agentId": long_agent, "decision": "deny",
         "requestId": "r" * 128, "metadata": {"errorCode": "E" * 64}},
        {"eventType": "prompt_check", "agentId": long_agent, "decision": "allow", "requestId": "s" * 128},
    ]
    api(base, "/api/v1/usage/report", key,
        {"events": events, "sidecarId": "p" * 128, "version": "v" * 64, "mode": "m" * 64})

    # Approvals relayed with the longest text a control plane files, one of them
    # settled with the longest name and reason it keeps.
    for approval_id in ("ap_waits", "ap_ended"):
        api(base, "/api/v1/approvals", key, {"id": approval_id, "request": {
            "nonce": "n" * 128, "requestId": "q" * 128, "agentId": long_agent, "action": "c" * 1024,
            "route": "/" + "r" * 1023, "tool": "t" * 1024, "argumentsSha256": "0" * 64, "ruleId": "u" * 1024,
            "policyVersion": "v" * 1024, "reason": "w" * 1024, "expiresAtMs": 4102444800000}})
    api(base, "/api/v1/approvals/ap_ended/settle", key, {"status": "denied", "by": "b" * 500, "reason": "x" * 500})

    b.get(base + "/keys")
    b.find("#key-name").type("k" * 100)
    b.find("#create-key").click()
    b.wait("#new-api-key")

    b.get(base + "/alerts")
    b.find("#hook-url").type("https://hooks.example.com/" + "h" * 200)
    b.find("#hook-spike").type("3")
    b.find("#add-hook-button").click()
    b.wait("#new-hook-secret")

    b.get(base + "/tokens")
    b.screenshot(os.path.join(LAYOUT_OUT, "token-form.png"))
    width = b.script("return document.getElementById('token-custom-amount').getBoundingClientRect().width")
    problems = []
    if width >= 150:
        problems.append(f"the custom-expiry amount is {width:.0f} px wide, not a short box")
    b.find("#token-name").type("n" * 100)
    b.find("#token-agent").type("b" * 128)
    b.find("#create-token").click()
    b.wait("#new-token")

    b.get(base + "/keys")
    key_page = b.find("#keys a[href^='/keys/']").attr("href")
    pages = ["/usage?days=7", "/usage?days=90", "/agents", "/agent?id=" + long_agent, "/audit",
             "/tokens", "/keys", key_page, "/sidecars", "/approvals", "/alerts", "/billing", "/members",
             "/admin-log", "/account"]
    for path in pages:
        b.get(base + path)
        name = path.strip("/").replace("/", "-").replace("?", "-").replace("=", "")[:40]
        b.screenshot(os.path.join(LAYOUT_OUT, f"{name}.png"))
        over = b.script(OVERFLOW)
        if over:
            problems.append(f"{path} is wider than the window: {over}")
        else:
            print(f"ok: {path} fits in {b.script('return window.innerWidth')} px", flush=True)

    # A phone: the page itself never scrolls sideways.
    b.resize(375, 800)
    check(b.script("return window.innerWidth") == 375, "the window is 375 px wide")
    for path in pages:
        b.get(base + path)
        name = path.strip("/").replace("/", "-").replace("?", "-").replace("=", "")[:40]
        b.screenshot(os.path.join(LAYOUT_OUT, f"375-{name}.png"))
        width = b.script("return document.documentElement.scrollWidth")
        if width > 375:
            problems.append(f"{path} is {width} px wide at 375 px: {b.script(OVERFLOW)}")
        else:
            print(f"ok: {path} fits in 375 px", flush=True)
    check(not problems, "\n".join(problems))


def main():
    run_with_cloud(LAYOUT_OUT, layout)
    print(f"PASS: layout (no page wider than the window); screenshots in {LAYOUT_OUT}")


if __name__ == "__main__":
    main()
