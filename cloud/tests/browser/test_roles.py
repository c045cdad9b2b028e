"""Browser test of roles, confirmations and the admin log, in headless Chromium with
JavaScript turned off (every page must work without it).

The owner signs up, adds an admin and a viewer through the members form, revokes
the first API key through its confirmation page (nothing is revoked before the
confirm button), and unlocks the viewer after failed logins. Then each member
logs in and sees only the buttons their role can use; the viewer reads the admin
log, which names the owner for each action. Screenshots go to
$KALGUARD_TEST_OUTPUT/roles (default: e2e-output/cloud-browser/roles).

Usage: python3 cloud/tests/browser/test_roles.py  (needs chromium + chromium-driver)
Env: KALGUARD_CLOUD_BIN (default $CARGO_TARGET_DIR/debug/kalguard-cloud).
"""

import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_dashboard import OUT, check  # noqa: E402
from webdriver import run_with_cloud  # noqa: E402

ROLES_OUT = os.path.join(OUT, "roles")
PASSWORD = "member password 1"


def shot(b, name):
    b.screenshot(os.path.join(ROLES_OUT, f"{name}.png"))


def license_ok(base, key):
    req = urllib.request.Request(base + "/api/v1/license/validate", data=b"{}", method="POST",
                                 headers={"x-api-key": key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read()).get("valid") is True
    except urllib.error.HTTPError:
        return False


def log_in(b, base, email, password):
    b.get(base + "/login")
    b.find("#email").type(email)
    b.find("#password").type(password)
    b.find("#login").click()


def log_out(b):
    b.find("#logout").click()
    b.wait_url("/login")


def has(b, css):
    return len(b.find_all(css)) > 0


def journey(b, base):
    print("[1] the owner signs up and adds an admin and a viewer", flush=True)
    b.get(base + "/signup")
    b.find("#org_name").type("Roles Org")
    b.find("#email").type("owner@roles.test")
    b.find("#password").type("correct horse battery")
    b.find("#signup").click()
    key = b.wait("#new-api-key").text.strip()
    for email, role in [("admin@roles.test", "admin"), ("viewer@roles.test", "viewer")]:
        b.get(base + "/members")
        form = b.find("#add-member")
        form.find("input[name=email]").type(email)
        form.find("input[name=password]").type(PASSWORD)
        form.find(f"select[name=role] option[value={role}]").click()
        form.find("button[type=submit]").click()
        check("Member added" in b.wait("#notice").text, f"{email} added")
    roles = {r.find("td.wrap").text: r.find("td.role").text for r in b.find_all("#members tbody tr")}
    check(roles == {"owner@roles.test": "owner", "admin@roles.test": "admin", "viewer@roles.test": "viewer"},
          f"roles listed: {roles}")
    shot(b, "members-owner")

    print("[2] revoking a key asks on its own page first (no JavaScript)", flush=True)
    b.get(base + "/keys")
    b.find("tr.key button.revoke").click()
    b.wait("#confirm")
    check("Revoke this API key?" in b.source, "asked first")
    shot(b, "revoke-confirm")
    check(license_ok(base, key), "the key still works before confirming")
    b.find("#cancel").click()
    b.wait_url("/keys")
    check(license_ok(base, key), "cancel revokes nothing")
    b.find("tr.key button.revoke").click()
    b.wait("#confirm").click()
    check("API key revoked" in b.wait("#notice").text, "revoked after confirming")
    check(not license_ok(base, key), "the key is refused")

    print("[3] failed logins lock the viewer; the owner unlocks them", flush=True)
    log_out(b)
    for _ in range(5):
        log_in(b, base, "viewer@roles.test", "wrong password!")
        b.wait("#error")
    log_in(b, base, "viewer@roles.test", PASSWORD)
    check("Too many failed attempts" in b.wait("#error").text, "the viewer waits")
    log_in(b, base, "owner@roles.test", "correct horse battery")
    b.wait_url("/usage")
    b.get(base + "/members")
    check(has(b, "span.locked"), "the members page shows the lock")
    shot(b, "members-locked")
    b.find("button.unlock").click()
    check("Unlocked" in b.wait("#notice").text, "unlocked")
    log_out(b)

    print("[4] each role sees only the buttons it can use", flush=True)
    expect = {  # page, selector: (owner, admin, viewer)
        ("/keys", "#create-key"): (True, True, False),
        ("/tokens", "#create-token"): (True, True, False),
        ("/tokens", "#rotate-secret"): (True, False, False),
        ("/members", "#add-member"): (True, False, False),
        ("/members", "button.remove-member"): (True, False, False),
    }
    for i, (email, password) in enumerate([("owner@roles.test", "correct horse battery"),
                                           ("admin@roles.test", PASSWORD), ("viewer@roles.test", PASSWORD)]):
        log_in(b, base, email, password)
        b.wait_url("/usage")
        for (page, css), shown in expect.items():
            b.get(base + page)
            check(has(b, css) == shown[i], f"{email} on {page}: {css} shown={has(b, css)}")
        shot(b, f"members-{email.split('@')[0]}")
        if email.startswith("viewer"):
            b.get(base + "/admin-log")
            rows = [(r.find("td.action").text, r.find_all("td.wrap")[0].text) for r in b.find_all("tr.admin-entry")]
            for action in ["org.created", "member.added", "api_key.revoked", "member.login_unlocked"]:
                check((action, "owner@roles.test") in rows, f"{action} by the owner in {rows}")
            check("Hash chain intact" in b.find("#chain").text, b.find("#chain").text)
            shot(b, "admin-log-viewer")
        log_out(b)


def main():
    run_with_cloud(ROLES_OUT, journey, javascript=False)
    print(f"PASS: roles, confirmations and admin log without JavaScript; screenshots in {ROLES_OUT}")


if __name__ == "__main__":
    main()
