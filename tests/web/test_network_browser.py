"""The networks page, the run form's Network section and the container page's Network card in
a real browser, on the live stack (real bridges, veths, nftables and published ports).

Screenshots go to test-artifacts/ (gitignored): networks.png, network-detail.png,
run-form-network.png, container-network.png, container-list-ports.png, network-connect.png.
"""

import re
import secrets
import urllib.request

import pytest

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.live]

IMAGE = "busybox:1.29"


def _addresses(live_stack, container) -> str:
    """`ip -4 -o addr` inside the container (the seed's `ip -f inet -4 -o addr`)."""
    result = live_stack.docker_cli("exec", container, "ip", "-4", "-o", "addr", timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _failed_jobs(page, url) -> str:
    """The jobs page's failed rows, to say why the node did not do what was asked."""
    page.goto(f"{url}/jobs/")
    return "\n".join(page.locator("tr:has-text('failed')").all_inner_texts())


def test_user_network_from_the_page_run_connect_and_policy(live_stack, page):
    from playwright.sync_api import expect

    tag = secrets.token_hex(3)
    # the seed's network, on a subnet of its own: other tests' bridges share this host
    network, third = f"user-network-{tag}", 64 + secrets.randbelow(128)
    subnet, ip_range = f"10.214.{third}.0/24", f"10.214.{third}.128/25"
    web, peer = f"web-{tag}", f"peer-{tag}"
    url = live_stack.panel_url
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.click("nav.mainnav a:has-text('Networks')")
        page.wait_for_url(f"{url}/networks/")
        expect(page.locator("#network-table tr[data-network='bridge']")).to_contain_text("bridge")
        page.fill("#id_name", network)
        page.fill("#id_subnet", subnet)
        page.fill("#id_ip_range", ip_range)
        page.fill("#id_labels", "project=dockerinaction\nchapter=5")
        page.check("#id_attachable")
        page.click("button:has-text('Create network')")
        page.wait_for_url(f"{url}/networks/{network}/")
        expect(page.locator(".message-success")).to_contain_text(f"Network {network} created")
        expect(page.locator("#network-subnet")).to_have_text(subnet)
        expect(page.locator("#network-ip-range")).to_have_text(ip_range)
        inspected = live_stack.docker_cli("network", "inspect", network)
        assert inspected.returncode == 0 and ip_range in inspected.stdout, inspected

        page.goto(f"{url}/containers/new/")
        page.fill("#id_image", IMAGE)
        page.fill("#id_name", web)
        page.fill("#id_command", "sh -c 'mkdir -p /www && echo hello-from-web > /www/index.html"
                                 " && exec httpd -f -p 80 -h /www'")
        page.check("#id_detach")
        page.click("#network-settings > summary")
        page.select_option("#id_network", network)
        page.fill("#id_publish", "127.0.0.1::80")
        page.fill("#id_aliases", "www")
        page.locator("#network-settings").screenshot(path=str(ARTIFACTS / "run-form-network.png"))
        page.click("button[type=submit]:has-text('Run')")
        page.wait_for_url(re.compile(r"/containers/[0-9a-f]{64}/$"))
        expect(page.locator("#state-badge")).to_have_text("running", timeout=30_000)
        page.reload()  # the Network card is drawn with the page: now with the port
        card = page.locator("#network")
        web_ip = card.locator(f"tr[data-network='{network}'] .ip").inner_text().split("/")[0]
        assert web_ip.startswith(f"10.214.{third}.") and int(web_ip.rsplit(".", 1)[1]) >= 128
        expect(card).to_contain_text("www")
        link = card.locator("#published-ports a")
        expect(link).to_have_attribute("href", re.compile(r"^http://127\.0\.0\.1:\d+/$"))
        port_url = link.get_attribute("href")
        page.screenshot(path=str(ARTIFACTS / "container-network.png"), full_page=True)
        assert _get(port_url).strip() == "hello-from-web"  # the link leads to the container
        assert f"{web_ip}/24" in _addresses(live_stack, web)

        page.goto(f"{url}/")
        row_link = page.locator(f"#container-table tr:has(a:text-is('{web}')) td.ports a")
        expect(row_link).to_have_attribute("href", port_url)
        expect(page.locator(f"#container-table tr:has(a:text-is('{web}')) td.ports")
               ).to_contain_text("->80/tcp")
        page.screenshot(path=str(ARTIFACTS / "container-list-ports.png"), full_page=True)

        ran = live_stack.docker_cli("run", "-d", "--name", peer, IMAGE, "sleep", "300",
                                    timeout=60)
        assert ran.returncode == 0, ran.stderr
        page.goto(f"{url}/networks/{network}/")
        expect(page.locator(f"#network-containers tr[data-container='{web}'] .ip")
               ).to_contain_text(web_ip)
        page.select_option("#connect-container", label=f"{peer} (running)")
        page.fill("#connect-aliases", "buddy")
        page.locator("#network-containers").screenshot(
            path=str(ARTIFACTS / "network-connect.png"))
        page.click("#connect-form button:has-text('Connect')")
        expect(page.locator(".message-success")).to_contain_text(f"Connected {peer}")
        peer_row = page.locator(f"#network-containers tr[data-container='{peer}']")
        peer_ip = peer_row.locator(".ip").inner_text().split("/")[0]
        assert peer_ip.startswith(f"10.214.{third}.") and peer_ip != web_ip
        expect(peer_row).to_contain_text("eth1")
        expect(peer_row).to_contain_text("buddy")
        inside = ""
        for _ in range(40):  # the connect job runs on the worker
            inside = _addresses(live_stack, peer)
            if f"{peer_ip}/24" in inside:
                break
            page.wait_for_timeout(250)
        assert re.search(rf"eth1\s+inet {re.escape(peer_ip)}/24", inside), \
            inside

        # the policy: icc off, and only peer -> web on tcp/80
        policy = page.locator("#network-policy")
        policy.locator("#policy-icc").uncheck()
        row = policy.locator("tr.policy-row").last
        row.locator("select[name=src]").select_option(peer)
        row.locator("select[name=dst]").select_option(web)
        row.locator("select[name=proto]").select_option("tcp")
        row.locator("input[name=port]").fill("80")
        policy.locator("#policy-add").click()
        expect(policy.locator("tr.policy-row")).to_have_count(2)
        policy.locator("tr.policy-row").last.locator("[data-remove-row]").click()
        expect(policy.locator("tr.policy-row")).to_have_count(1)
        policy.locator("button:has-text('Save policy')").click()
        expect(page.locator(".message-success")).to_contain_text(f"Policy of {network} saved")
        saved = page.locator("#network-policy tr.policy-row").first
        expect(saved.locator("select[name=src]")).to_have_value(peer)
        expect(saved.locator("select[name=dst]")).to_have_value(web)
        expect(saved.locator("select[name=proto]")).to_have_value("tcp")
        expect(saved.locator("input[name=port]")).to_have_value("80")
        expect(page.locator("#policy-icc")).not_to_be_checked()
        page.screenshot(path=str(ARTIFACTS / "network-detail.png"), full_page=True)
        options = live_stack.docker_cli("network", "inspect", "-f", "{{.Options}}", network)
        assert "enable_icc:false" in options.stdout, options
        # the allowed pair talks (nc: busybox 1.29's wget dies with SIGSEGV under exec here)
        for _ in range(10):  # the worker's job applies the rules
            fetched = live_stack.docker_cli(
                "exec", peer, "sh", "-c",
                f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {web_ip} 80", timeout=30)
            if "hello-from-web" in fetched.stdout:
                break
            page.wait_for_timeout(300)
        assert "hello-from-web" in fetched.stdout, (fetched, _failed_jobs(page, url))
        pinged = live_stack.docker_cli("exec", peer, "ping", "-c", "1", "-W", "1", web_ip,
                                       timeout=30)
        assert pinged.returncode != 0, (pinged, _failed_jobs(page, url))  # icmp is not listed

        page.once("dialog", lambda dialog: dialog.accept())
        peer_row.locator("button:has-text('Disconnect')").click()
        expect(page.locator(".message-success")).to_contain_text(f"Disconnected {peer}")
        expect(page.locator(f"#network-containers tr[data-container='{peer}']")).to_have_count(0)
        for _ in range(40):
            if peer_ip not in _addresses(live_stack, peer):
                break
            page.wait_for_timeout(250)
        assert peer_ip not in _addresses(live_stack, peer)

        page.goto(f"{url}/networks/")
        row = page.locator(f"#network-table tr[data-network='{network}']")
        expect(row.locator(".in-use")).to_contain_text("1 of 127")
        expect(row).to_contain_text("project=dockerinaction")
        expect(row.locator(".policy")).to_contain_text("allow list: 1")
        page.screenshot(path=str(ARTIFACTS / "networks.png"), full_page=True)
        page.once("dialog", lambda dialog: dialog.accept())
        row.locator("button:has-text('Remove')").click()
        expect(page.locator(".message-error")).to_contain_text("active endpoints")
    finally:
        live_stack.docker_cli("rm", "-f", web, peer, timeout=60)
        live_stack.docker_cli("network", "rm", network, timeout=60)
