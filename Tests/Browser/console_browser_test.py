"""The console in a real browser (headless Chromium driven by Selenium), against a running stack.

`ConsoleBrowserTests` (Swift) starts the stack, makes the merchants and a dispute, and runs this
with their keys in the environment; a failed check exits non-zero with what it saw. Screenshots
of every page go to PAYWIRE_CONSOLE_SCREENSHOTS.

Checked: sign-in, an endpoint created and its secret shown once, a payment's delivery and its
attempts, a failed delivery retried from the page, an endpoint made inactive by a 410 enabled
again and its deliveries recovered, a dispute accepted, the operator view; another merchant's key
sees none of it; a form without its CSRF token is refused; `<script>` is shown as text; the
cookie and the page headers are as the README says.
"""

import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

GATEWAY = os.environ["PAYWIRE_GATEWAY_URL"]
MERCHANT_ID = os.environ["PAYWIRE_MERCHANT_ID"]
MERCHANT_KEY = os.environ["PAYWIRE_MERCHANT_KEY"]
OTHER_KEY = os.environ["PAYWIRE_OTHER_MERCHANT_KEY"]
ADMIN_KEY = os.environ["PAYWIRE_ADMIN_KEY"]
DISPUTE_ID = os.environ["PAYWIRE_DISPUTE_ID"]
RECOVERY_JOB_ID = os.environ["PAYWIRE_RECOVERY_JOB_ID"]
SHOTS = os.environ["PAYWIRE_CONSOLE_SCREENSHOTS"]
# Every wait is for a condition, bounded only so a broken stack fails rather than hangs.
PATIENCE = float(os.environ.get("PAYWIRE_BROWSER_PATIENCE_SECONDS", "120"))
HOSTILE = "<script>alert('paywire')</script>"


class Receiver(http.server.ThreadingHTTPServer):
    """A merchant's endpoint: answers with `status`, remembers the event types it was sent."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.status = 500
        self.received = []  # (event_type, object id, status answered)
        self.lock = threading.Lock()


class ReceiverHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        server = self.server
        with server.lock:
            status = server.status
            try:
                event = json.loads(body)
                obj = event.get("content", {}).get("object", {})
                server.received.append((event.get("event_type"), obj.get("payment_id"), status))
            except ValueError:
                server.received.append((None, None, status))
        answer = ("<b>" + HOSTILE + "</b>").encode()
        self.send_response(status)
        self.send_header("content-type", "text/html")
        self.send_header("set-cookie", "receiver_session=topsecretvalue")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def wait_for(what, condition):
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError("timed out waiting for " + what)


def api(method, path, key, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(GATEWAY + path, data=data, method=method, headers={"api-key": key, "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def raw_post(path, fields, cookie):
    """A form post outside the browser: what a page on another site could make a browser send."""
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(GATEWAY + path, data=urllib.parse.urlencode(fields).encode(), method="POST",
                                     headers={"content-type": "application/x-www-form-urlencoded", "cookie": cookie})
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


class Console:
    def __init__(self):
        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("PAYWIRE_CHROMIUM", "/usr/bin/chromium")
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000"]:
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service(os.environ.get("PAYWIRE_CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
        self.driver.set_page_load_timeout(PATIENCE)

    def open(self, path):
        self.driver.get(GATEWAY + path)
        self.no_alert()

    def shot(self, name):
        # The whole page, not just the window: the height the page needs.
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(700, min(int(height) + 40, 4000)))
        self.driver.save_screenshot(os.path.join(SHOTS, name + ".png"))
        self.driver.set_window_size(1280, 1000)

    def text(self):
        return self.driver.find_element(By.TAG_NAME, "body").text

    def path(self):
        return urllib.parse.urlparse(self.driver.current_url).path

    def submit(self, form_action):
        self.click(self.driver.find_element(By.CSS_SELECTOR, "form[action='%s'] button[type=submit]" % form_action))

    def click(self, element):
        """Clicks what leads to another page, and waits until that page has replaced this one:
        a click returns before a form's redirect is followed."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        wait = WebDriverWait(self.driver, PATIENCE)
        wait.until(expected_conditions.staleness_of(old))
        wait.until(lambda driver: driver.execute_script("return document.readyState") == "complete")
        self.no_alert()

    def no_alert(self):
        try:
            alert = self.driver.switch_to.alert
            text = alert.text
            alert.dismiss()
            raise AssertionError("a script ran in the console: alert(%r)" % text)
        except NoAlertPresentException:
            pass

    def sign_in(self, key):
        self.open("/console/sign-in")
        self.driver.find_element(By.ID, "api_key").send_keys(key)
        self.submit("/console/sign-in")

    def sign_out(self):
        self.submit("/console/sign-out")
        check(self.path() == "/console/sign-in", "signed out to " + self.path())

    def cookie_header(self):
        return "; ".join("%s=%s" % (c["name"], c["value"]) for c in self.driver.get_cookies())


def main():
    os.makedirs(SHOTS, exist_ok=True)
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    receiver_url = "http://127.0.0.1:%d/hooks" % receiver.server_address[1]
    console = Console()
    driver = console.driver
    try:
        # Signed out, every page leads to sign-in; a bad key is refused on the page.
        console.open("/console/payments")
        check(console.path() == "/console/sign-in", "a signed-out page went to " + console.path())
        console.shot("sign-in")
        console.sign_in("dev_not_a_key")
        check("not a valid secret API key" in console.text(), "a bad key: " + console.text())

        # Sign in: the cookie is HttpOnly and SameSite=Strict (checked from the raw answer), and
        # the key is nowhere in the page or the URL.
        console.sign_in(MERCHANT_KEY)
        check(console.path() == "/console/endpoints", "signed in to " + console.path())
        check(MERCHANT_KEY not in driver.page_source and MERCHANT_KEY not in driver.current_url, "the key is shown")
        session = next(c for c in driver.get_cookies() if c["name"] == "paywire_console")
        check(session["httpOnly"] and session.get("sameSite") == "Strict", "cookie attributes: %r" % session)

        # An endpoint from the page; its secret is shown once.
        driver.find_element(By.ID, "webhook_url").send_keys(receiver_url)
        driver.find_element(By.CSS_SELECTOR, "input[name=events][value=payment_succeeded]").click()
        console.submit("/console/endpoints")
        secret = driver.find_element(By.ID, "signing-secret").text
        check(secret.startswith("whsec_"), "secret page: " + console.text())
        console.shot("endpoint-secret")
        console.click(driver.find_element(By.LINK_TEXT, "Go to the endpoint"))
        endpoint_path = console.path()
        check(secret not in driver.page_source, "the secret is shown again on the endpoint page")

        # A payment whose description holds markup: its first delivery fails (500).
        status, payment = api("POST", "/payments", MERCHANT_KEY, {
            "amount": 2500, "currency": "USD", "confirm": True, "capture_method": "automatic", "description": HOSTILE,
            "metadata": {"note": HOSTILE},
            "payment_method": "card", "payment_method_data": {"card": {
                "card_number": "4242424242424242", "card_exp_month": "12", "card_exp_year": "2040", "card_holder_name": "Ada Lovelace", "card_cvc": "123"}},
        })
        check(status == 200 and payment["status"] == "succeeded", "payment: %r %r" % (status, payment))
        payment_id = payment["payment_id"]
        wait_for("the first delivery", lambda: any(r[1] == payment_id for r in receiver.received))

        console.open("/console/payments")
        check(payment_id in console.text(), "the payments list lacks " + payment_id)
        console.shot("payments")
        console.click(driver.find_element(By.LINK_TEXT, payment_id))
        check(HOSTILE in console.text(), "the description is not shown as text")
        check(HOSTILE not in driver.page_source and "&lt;script&gt;" in driver.page_source, "markup is not escaped")
        check("client_secret" in console.text() and payment.get("client_secret", "") not in driver.page_source, "the client secret is shown")
        console.shot("payment")

        # The events log: the delivery, failed, with its attempt's request and response.
        console.open("/console/events?object_id=" + payment_id)
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.event-row")
        check(len(rows) == 1, "events for the payment: " + console.text())
        console.shot("events")
        console.click(rows[0].find_element(By.TAG_NAME, "a"))
        delivery_path = console.path()
        wait_for("the failed attempt", lambda: (driver.refresh() or True) and "HTTP 500 · failed" in console.text())
        page = console.text()
        check("payment_succeeded" in page and re.search(r'\n +"payment_id" ?: "%s"' % payment_id, page), "the request body is not shown pretty-printed")
        check(" nil" not in page and "()" not in page, "an absent value is shown")
        check("topsecretvalue" not in driver.page_source and "(masked)" in page, "a set-cookie answered by the endpoint is shown")
        check(HOSTILE in page, "the endpoint's answer is not shown as text")
        console.shot("delivery-failed")

        # Retry now, the endpoint fixed: a manual retry that succeeds.
        receiver.status = 200
        console.submit(delivery_path + "/retry")
        check("Retried: the endpoint took it." in console.text(), "after retry: " + console.text())
        check("manual_retry" in console.text() and "HTTP 200 · delivered" in console.text(), "the manual retry's attempt is missing")
        console.shot("delivery-retried")

        # A 410 makes the endpoint inactive and cancels the delivery; enabled again, recover
        # sends it once more.
        receiver.status = 410
        status, second = api("POST", "/payments", MERCHANT_KEY, {
            "amount": 1200, "currency": "USD", "confirm": True, "payment_method": "card", "payment_method_data": {"card": {
                "card_number": "4242424242424242", "card_exp_month": "12", "card_exp_year": "2040", "card_cvc": "123"}},
        })
        check(status == 200, "second payment: %r" % (second,))
        wait_for("the 410", lambda: any(r[1] == second["payment_id"] and r[2] == 410 for r in receiver.received))
        console.open(endpoint_path)
        wait_for("the endpoint inactive", lambda: (driver.refresh() or True) and "inactive (answered_410)" in console.text())
        console.shot("endpoint-inactive")
        receiver.status = 200
        console.submit(endpoint_path + "/enable")
        check("The endpoint is enabled." in console.text(), "enable: " + console.text())
        console.submit(endpoint_path + "/recover")
        check("1 failed deliveries are scheduled again." in console.text(), "recover: " + console.text())
        wait_for("the recovered delivery", lambda: any(r[1] == second["payment_id"] and r[2] == 200 for r in receiver.received))
        last_success = "//dt[text()='Last success']/following-sibling::dd[1]"
        wait_for("the endpoint's last success", lambda: (driver.refresh() or True) and driver.find_element(By.XPATH, last_success).text != "never")
        console.shot("endpoint")
        console.open("/console/endpoints")
        console.shot("endpoints")

        # A dispute, accepted from its page.
        console.open("/console/disputes")
        check(DISPUTE_ID in console.text(), "the disputes list lacks " + DISPUTE_ID)
        console.shot("disputes")
        console.click(driver.find_element(By.LINK_TEXT, DISPUTE_ID))
        console.submit("/console/disputes/%s/accept" % DISPUTE_ID)
        check("The dispute is accepted" in console.text() and "dispute_accepted" in console.text(), "accept: " + console.text())
        console.shot("dispute")

        # A recovery job, found by its id: its schedule, each attempt's decline, the final event.
        console.open("/console/recovery")
        driver.find_element(By.NAME, "payment_id").send_keys(RECOVERY_JOB_ID)
        console.submit("/console/recovery")
        page = console.text()
        check(console.path() == "/console/recovery/" + RECOVERY_JOB_ID, "the job lookup went to " + console.path())
        check("inv_console" in page and page.count("insufficient_funds") >= 2 and "succeeded" in page, "recovery job: " + page)
        console.shot("recovery")

        # CSRF: the same session's form without its token, or with another, is refused.
        cookie = console.cookie_header()
        for fields in [{}, {"csrf_token": "x" * 43}]:
            status, _, body = raw_post(endpoint_path + "/disable", fields, cookie)
            check(status == 403 and "CSRF" in body, "a form without its token: %d" % status)
        console.open(endpoint_path)
        check("Disable" in console.text(), "the endpoint was disabled by a forged form")

        # Every page: no script allowed, not framed, not cached.
        request = urllib.request.Request(GATEWAY + "/console/endpoints", headers={"cookie": cookie})
        with urllib.request.urlopen(request, timeout=60) as response:
            policy = response.headers["content-security-policy"]
            check("default-src 'none'" in policy and "script-src" not in policy and "frame-ancestors 'none'" in policy, "policy: %r" % policy)
            check(response.headers["cache-control"] == "no-store", "cache-control: %r" % response.headers["cache-control"])

        # Another merchant sees none of it, even by id.
        console.sign_out()
        console.sign_in(OTHER_KEY)
        console.open("/console/payments")
        check(payment_id not in console.text(), "another merchant's payments list shows " + payment_id)
        for path in ["/console/payments/" + payment_id, delivery_path, endpoint_path, "/console/disputes/" + DISPUTE_ID, "/console/recovery/" + RECOVERY_JOB_ID]:
            console.open(path)
            check("not found" in console.text().lower(), "another merchant opened %s: %s" % (path, console.text()))
        console.open("/console/events")
        check(payment_id not in console.text(), "another merchant's events log shows " + payment_id)
        status, _, body = raw_post("/console/disputes/%s/accept" % DISPUTE_ID, {"csrf_token": "x"}, console.cookie_header())
        check(status == 403, "a forged accept by another merchant: %d" % status)

        # The operator: readiness of every service and the dead letters; a merchant's pages on choice.
        console.sign_out()
        console.sign_in(ADMIN_KEY)
        check(console.path() == "/console/operator", "the admin key went to " + console.path())
        wait_for("every service ready", lambda: (driver.refresh() or True) and console.text().count("ready") >= 3 and "not_ready" not in console.text())
        check("Dead letters" in console.text(), console.text())
        console.shot("operator")
        driver.find_element(By.NAME, "merchant_id").send_keys(MERCHANT_ID)
        console.submit("/console/operator/merchant")
        console.open("/console/payments")
        check(payment_id in console.text(), "the operator's view of the merchant lacks " + payment_id)
        console.sign_out()
        console.open("/console/payments")
        check(console.path() == "/console/sign-in", "a signed-out session still opens pages")
        print("console browser test: every check passed; screenshots in " + SHOTS)
    except Exception:
        try:
            console.shot("failure")
            print("page at failure: " + driver.current_url + "\n" + console.text(), file=sys.stderr)
        except Exception:
            pass
        raise
    finally:
        driver.quit()
        receiver.shutdown()


if __name__ == "__main__":
    main()
