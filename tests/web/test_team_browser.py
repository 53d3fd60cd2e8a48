"""The teams pages in a real browser, on the live stack: a site admin creates a team, invites a
new user (who sets a password through the one-time link and signs in), changes its role, and
edits the team's policy and quotas.

Screenshots go to test-artifacts/ (gitignored): team-invited.png, users.png, teams.png,
team-new-member.png, team-policy.png, team-policy-error.png.
"""

import secrets

import pytest

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture
def team_page(live_stack, page):
    """The page of a new team (the live stack's admin its owner), deleted afterwards."""
    from playwright.sync_api import expect

    name = f"web-team-{secrets.token_hex(3)}"
    page.click("nav.mainnav a:has-text('Teams')")
    page.wait_for_url(f"{live_stack.panel_url}/teams/")
    page.fill("#id_name", name)
    page.click("button:has-text('Create team')")
    expect(page.locator(".message-success")).to_contain_text(f"Team {name} created")
    team_url = page.url
    yield page, name
    page.goto(team_url)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-team")
    expect(page.locator(".message-success")).to_contain_text(f"Team {name} deleted")


def test_invite_a_new_user_and_change_its_role(live_stack, browser, team_page):
    from playwright.sync_api import expect

    page, team = team_page
    username = f"dana-{secrets.token_hex(3)}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.fill("#id_user", username)
    page.select_option("#id_role", "viewer")
    page.click("#invite-form button:has-text('Invite')")
    expect(page.locator(".message-success")).to_contain_text(
        f"{username} created and added to team {team} as viewer")
    link = page.locator("#password-link input").input_value()
    assert link.startswith(f"{live_stack.panel_url}/accounts/reset/")
    row = page.locator(f"#member-table tr[data-member='{username}']")
    expect(row).to_contain_text("invited")
    page.screenshot(path=str(ARTIFACTS / "team-invited.png"), full_page=True)

    row.locator("select[name=role]").select_option("operator")
    row.locator("button:has-text('Change')").click()
    expect(page.locator(".message-success")).to_contain_text(
        f"{username} is now operator of team {team}")
    expect(page.locator("#password-link")).to_have_count(0)  # the link was shown once
    row = page.locator(f"#member-table tr[data-member='{username}']")
    expect(row.locator("select[name=role]")).to_have_value("operator")
    page.click("nav.mainnav a:has-text('Users')")
    user_row = page.locator(f"#user-table tr[data-user='{username}']")
    expect(user_row.locator(".status")).to_have_text("invited")
    expect(user_row.locator(".teams")).to_contain_text(f"{team} operator")
    page.screenshot(path=str(ARTIFACTS / "users.png"), full_page=True)

    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        dana = context.new_page()
        dana.goto(link)
        expect(dana.locator("h1")).to_have_text("Set your password")
        password = secrets.token_urlsafe(12)
        dana.fill("#id_new_password1", password)
        dana.fill("#id_new_password2", password)
        dana.click("button:has-text('Set password')")
        dana.wait_for_url(f"{live_stack.panel_url}/login/")
        expect(dana.locator(".message-success")).to_contain_text(
            f"Password set. Sign in as {username}")
        dana.fill("#id_username", username)
        dana.fill("#id_password", password)
        dana.click("button[type=submit]")
        dana.wait_for_url(f"{live_stack.panel_url}/")
        dana.click("nav.mainnav a:has-text('Teams')")
        team_row = dana.locator(f"#team-table tr[data-team='{team}']")
        expect(team_row).to_contain_text("operator")
        dana.screenshot(path=str(ARTIFACTS / "teams.png"), full_page=True)
        expect(dana.locator("nav.mainnav a:has-text('Users')")).to_have_count(0)
        team_row.locator("a").click()
        expect(dana.locator("#my-role")).to_have_text("operator")
        expect(dana.locator("#invite-form")).to_have_count(0)
        expect(dana.locator("#id_allow_privileged")).to_be_disabled()
        dana.screenshot(path=str(ARTIFACTS / "team-new-member.png"), full_page=True)
        dana.goto(link)  # used: no second password from it
        expect(dana.locator("h1")).to_have_text("This link no longer works")
    finally:
        context.close()


def test_edit_the_policy_and_quotas(live_stack, team_page):
    from playwright.sync_api import expect

    page, team = team_page
    team_url = page.url
    ARTIFACTS.mkdir(exist_ok=True)
    policy = page.locator("#policy")
    policy.locator("#id_allow_low_ports").check()
    policy.locator("#id_allow_devices").check()
    policy.locator("#id_bind_prefixes").fill("/srv/shared\n/data/blue/")
    policy.locator("#id_max_containers").fill("5")
    policy.locator("#id_max_memory").fill("2048m")
    policy.locator("#id_max_cpus").fill("1.5")
    policy.locator("#id_storage_quota").fill("10g")
    policy.locator("button:has-text('Save policy')").click()
    expect(page.locator(".message-success")).to_contain_text(f"Policy of team {team} saved")
    expect(policy.locator("#id_allow_low_ports")).to_be_checked()
    expect(policy.locator("#id_allow_privileged")).not_to_be_checked()
    expect(policy.locator("#id_bind_prefixes")).to_have_value("/srv/shared\n/data/blue")
    expect(policy.locator("#id_max_memory")).to_have_value("2g")  # the shortest form
    expect(policy.locator("#id_max_cpus")).to_have_value("1.5")
    expect(policy.locator("#id_storage_quota")).to_have_value("10g")
    expect(policy.locator("tr[data-quota=max_containers] .used")).to_have_text("0")
    page.screenshot(path=str(ARTIFACTS / "team-policy.png"), full_page=True)

    policy.locator("#id_max_memory").fill("lots")
    policy.locator("button:has-text('Save policy')").click()
    error = page.locator("#policy tr[data-quota=max_memory] .field-error")
    expect(error).to_contain_text("Enter a size such as 2g")
    policy.screenshot(path=str(ARTIFACTS / "team-policy-error.png"))
    page.goto(team_url)
    expect(page.locator("#id_max_memory")).to_have_value("2g")  # unchanged
