#!/usr/bin/env python3
"""Paywire's fault drill: sustained traffic through the balancer of a stack started by
./scripts/chaos (replicas of every service), while replicas are killed -9 and started again,
brokers of the dev cluster go down and up, the fake processors turn slow (the fake Adyen also sends
every notification twice), and PostgreSQL restarts
once with `pg_ctl restart -m immediate`. Afterwards it waits for the stack to settle and checks
that nothing was lost or done twice. Prints one table (and --json), exits 1 when an invariant
broke.

It is deliberately written outside Swift, with the standard library only: it checks the stack
from the outside, through its public API, the receivers' view, the processor's view and the
databases, not through Paywire's own code."""

import argparse
import glob
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADMIN = "test_admin"
FINAL_PAYMENT = {"succeeded", "failed", "cancelled"}
UNCONFIRMED = {"requires_confirmation", "requires_payment_method"}
FINAL_REFUND = {"succeeded", "failed"}
FAULT_ANSWERS = {502, 503, 504}


def log(message):
    print(f"[drill {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Stats:
    """Counters shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.problems = []

    def add(self, key, amount=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + amount

    def problem(self, text):
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(text)


def http(method, url, body=None, headers=None, timeout=35):
    """(status, parsed JSON or None, headers); status 0 when no answer came (connection refused or
    reset, timeout)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
            return response.status, parse(text), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, parse(error.read()), dict(error.headers or {})
    except Exception:  # noqa: BLE001 - any transport failure is "no answer"
        return 0, None, {}


def parse(text):
    try:
        return json.loads(text)
    except Exception:  # noqa: BLE001
        return None


class Receivers:
    """Webhook endpoints: `ok` answers 200, `flaky` fails the first attempt of half the deliveries
    (500), `slow` answers after a second. Every answered attempt is recorded by webhook-id."""

    def __init__(self):
        self.lock = threading.Lock()
        self.delivered = {}  # (endpoint, webhook-id) -> count of 2xx answers
        self.events = {}  # (endpoint, object id, event type) -> set of webhook-ids answered 2xx
        self.failed_once = set()
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = parse(self.rfile.read(length)) or {}
                endpoint = self.path.strip("/")
                webhook_id = self.headers.get("webhook-id") or ""
                status = 200
                if endpoint == "flaky":
                    with receivers.lock:
                        if webhook_id not in receivers.failed_once and hash(webhook_id) % 2 == 0:
                            receivers.failed_once.add(webhook_id)
                            status = 500
                elif endpoint == "slow":
                    time.sleep(1.0)
                if status == 200:
                    content = (body.get("content") or {}).get("object") or {}
                    object_id = content.get("refund_id") or content.get("payment_id") or content.get("id") or ""
                    with receivers.lock:
                        key = (endpoint, webhook_id)
                        receivers.delivered[key] = receivers.delivered.get(key, 0) + 1
                        receivers.events.setdefault((endpoint, object_id, body.get("event_type")), set()).add(webhook_id)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                # A dispatcher killed mid-request resets its connection: expected here.
                if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, endpoint):
        return f"http://127.0.0.1:{self.port}/{endpoint}"


class Drill:
    def __init__(self, args):
        self.args = args
        self.base = f"http://127.0.0.1:{args.base}"
        self.stats = Stats()
        self.receivers = Receivers()
        self.merchants = []
        self.payments = {}  # payment id -> {"confirm": bool, "connector": str}
        self.refunds = {}
        self.jobs = {}  # job id -> merchant
        self.lock = threading.Lock()
        self.stop_traffic = threading.Event()
        self.faults = []

    # --- set-up -------------------------------------------------------------------------

    def admin(self, method, path, body):
        status, answer, _ = http(method, self.base + path, body, {"api-key": ADMIN})
        if status != 200:
            raise SystemExit(f"set-up failed: {method} {path} -> {status} {answer}")
        return answer

    def setup(self):
        for index in range(self.args.merchants):
            merchant_id = f"chaos_{uuid.uuid4().hex[:8]}_{index}"
            account = self.admin("POST", "/accounts", {"merchant_id": merchant_id})
            profile = account["default_profile"]
            key = self.admin("POST", f"/api_keys/{merchant_id}", {"name": "drill"})["api_key"]
            headers = {"api-key": key}
            kinds = ["sandbox", "stripe", "adyen"] if self.args.fake_adyen else ["sandbox", "stripe"]
            connector = kinds[index % len(kinds)]
            account_body = {"connector_type": "payment_processor", "connector_name": connector, "connector_account_details": {"auth_type": "NoKey"}}
            if connector == "stripe":
                account_body["connector_account_details"] = {"auth_type": "HeaderKey", "api_key": "sk_test_paywire_chaos_0000000001"}
            elif connector == "adyen":
                account_body["connector_account_details"] = {"auth_type": "BodyKey", "api_key": "AQE_chaos", "key1": f"Chaos{index}ECOM"}
                account_body["connector_webhook_details"] = {"merchant_secret": self.adyen_webhook(f"Chaos{index}ECOM", f"{self.base}/webhooks/{merchant_id}/adyen")}
            status, answer, _ = http("POST", f"{self.base}/account/{merchant_id}/connectors", account_body, headers)
            if status != 200:
                raise SystemExit(f"set-up failed: connector {answer}")
            payment_account = answer["merchant_connector_id"]
            for endpoint in ("ok", "flaky", "slow"):
                status, answer, _ = http("POST", f"{self.base}/account/{merchant_id}/business_profile/{profile}/webhooks", {
                    "webhook_url": self.receivers.url(endpoint), "events": ["payment_succeeded", "payment_failed", "refund_succeeded", "refund_failed"],
                }, headers)
                if status != 200:
                    raise SystemExit(f"set-up failed: endpoint {answer}")
            merchant = {"id": merchant_id, "key": key, "profile": profile, "connector": connector, "payment_account": payment_account}
            if connector == "sandbox":
                v2 = {"api-key": key, "x-merchant-id": merchant_id, "x-profile-id": profile}
                status, answer, _ = http("POST", f"{self.base}/v2/connector-accounts", {
                    "connector_type": "billing_processor", "connector_name": "custombilling", "connector_account_details": {"auth_type": "NoKey"},
                    "feature_metadata": {"revenue_recovery": {"max_retry_count": 9, "billing_connector_retry_threshold": 0,
                                                              "billing_account_reference": {payment_account: payment_account}}},
                    "profile_id": profile,
                }, v2)
                if status != 200:
                    raise SystemExit(f"set-up failed: billing account {answer}")
                merchant["billing"] = answer["merchant_connector_id"]
                merchant["v2"] = v2
            self.merchants.append(merchant)
        if self.args.fake_adyen:
            self.adyen_behaviour(0)
        log(f"{len(self.merchants)} merchants ({', '.join(m['connector'] for m in self.merchants)}), 3 endpoints each (ok, flaky, slow)")

    def adyen_webhook(self, merchant_account, url):
        """The fake Adyen's Management API: a webhook to Paywire and its HMAC key (hex)."""
        management = f"http://127.0.0.1:{self.args.fake_adyen}/management/v3/merchants/{merchant_account}/webhooks"
        status, hook, _ = http("POST", management, {"url": url, "type": "standard"}, {"X-API-Key": "AQE_chaos"})
        if status != 200:
            raise SystemExit(f"set-up failed: fake Adyen webhook {status} {hook}")
        status, generated, _ = http("POST", f"{management}/{hook['id']}/generateHmac", {}, {"X-API-Key": "AQE_chaos"})
        if status != 200:
            raise SystemExit(f"set-up failed: fake Adyen HMAC key {status} {generated}")
        return generated["hmacKey"]

    # --- traffic ------------------------------------------------------------------------

    def until_final(self, method, path, body, headers, kind):
        """Sends once, then replays with the same Idempotency-Key while the answer is a fault of
        ours or 'in progress', until a final answer (or the drill's end). Returns the last answer."""
        first = True
        deadline = time.time() + self.args.duration + self.args.settle
        while True:
            status, answer, _ = http(method, self.base + path, body, headers)
            category = "no_answer" if status == 0 else f"{status // 100}xx" if status not in (202,) else "202"
            if status == 409 and ((answer or {}).get("error") or {}).get("code") == "IR_39":
                category = "in_progress"
            self.stats.add(f"{kind}.{'first' if first else 'replay'}.{category}")
            if status == 0 or status in FAULT_ANSWERS or category == "in_progress":
                if status in FAULT_ANSWERS and status == 503 and not isinstance(answer, dict):
                    self.stats.problem(f"{kind}: 503 without a JSON body")
                if time.time() > deadline:
                    return status, answer
                time.sleep(random.uniform(0.3, 1.0))
                first = False
                continue
            if 400 <= status < 500:
                self.stats.add("valid_requests_answered_4xx")
                self.stats.problem(f"{kind} answered {status}: {json.dumps(answer)[:300]}")
            if status >= 500:
                self.stats.add("answered_500")
                self.stats.problem(f"{kind} answered {status}: {json.dumps(answer)[:300]}")
            return status, answer

    def pay(self, merchant):
        card = random.choice(["4242424242424242"] * 4 + ["4000000000000002"])
        details = {"card_number": card, "card_exp_month": "03", "card_exp_year": "2030", "card_cvc": "737"}
        if merchant["connector"] == "adyen" and card == "4000000000000002":
            details["card_holder_name"] = "DECLINED"  # Adyen's test decline
        body = {"amount": random.randint(100, 9000), "currency": "USD", "confirm": True, "capture_method": "automatic",
                "payment_method": "card", "payment_method_data": {"card": details}}
        headers = {"api-key": merchant["key"], "Idempotency-Key": uuid.uuid4().hex}
        status, answer = self.until_final("POST", "/payments", body, headers, "payment")
        payment_id = (answer or {}).get("payment_id")
        if payment_id:
            with self.lock:
                self.payments[payment_id] = {"merchant": merchant, "confirm": True}
        else:
            self.stats.add("payments_without_an_id")
            self.stats.problem(f"payment request never answered with an id: {status} {answer}")

    def refund(self, merchant):
        with self.lock:
            candidates = [pid for pid, p in self.payments.items() if p["merchant"] is merchant and not p.get("refunded")]
            if not candidates:
                return
            payment_id = random.choice(candidates)
            self.payments[payment_id]["refunded"] = True
        status, payment, _ = http("GET", f"{self.base}/payments/{payment_id}", None, {"api-key": merchant["key"]})
        if status != 200 or (payment or {}).get("status") != "succeeded":
            return
        headers = {"api-key": merchant["key"], "Idempotency-Key": uuid.uuid4().hex}
        status, answer = self.until_final("POST", "/refunds", {"payment_id": payment_id, "amount": 50, "reason": "drill"}, headers, "refund")
        refund_id = (answer or {}).get("refund_id")
        if refund_id:
            with self.lock:
                self.refunds[refund_id] = merchant

    def recovery(self, merchant):
        reference = f"inv_{uuid.uuid4().hex[:12]}"
        report = {"amount_details": {"order_amount": 2250, "currency": "USD"}, "merchant_reference_id": reference, "connector_customer_id": "cus_drill",
                  "error": {"code": "110", "message": "Insufficient Funds"}, "payment_method_type": "card", "payment_method_sub_type": "credit",
                  "payment_method_data": {"primary_processor_payment_method_token": "tok_sandbox_4242", "additional_payment_method_info": {"card_network": "Visa"}},
                  "action": "schedule_failed_payment", "billing_merchant_connector_id": merchant["billing"], "payment_merchant_connector_id": merchant["payment_account"]}
        status, answer = self.until_final("POST", "/v2/payments/recovery", report, merchant["v2"], "recovery")
        job = (answer or {}).get("id")
        if not job:
            return
        # The billing platform ends the invoice: cancelled (the merchant hears one payment_failed)
        # or paid elsewhere (the merchant knows; no event).
        action = random.choice(["success_payment_external", "cancel_invoice"])
        with self.lock:
            self.jobs[job] = action
        self.until_final("POST", "/v2/payments/recovery", dict(report, action=action, attempt_status="success"), merchant["v2"], "recovery")

    def client(self):
        while not self.stop_traffic.is_set():
            merchant = random.choice(self.merchants)
            roll = random.random()
            if roll < 0.75:
                self.pay(merchant)
            elif roll < 0.9:
                self.refund(merchant)
            elif "billing" in merchant:
                self.recovery(merchant)

    # --- faults -------------------------------------------------------------------------

    def replicas(self):
        return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(self.args.state, "run", "*.sh")))

    def kill_and_restart(self, name):
        pid_file = os.path.join(self.args.state, f"{name}.pid")
        try:
            pid = int(open(pid_file).read().strip())
            os.kill(pid, 9)
        except (OSError, ValueError):
            pass
        self.faults.append(f"{time.strftime('%H:%M:%S')} kill -9 {name}")
        time.sleep(random.uniform(0.5, 3.0))
        subprocess.Popen(["bash", os.path.join(self.args.state, "run", f"{name}.sh")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def broker(self, broker_id, state):
        http("POST", f"http://127.0.0.1:{self.args.broker_control}/brokers/{broker_id}/{state}", None, timeout=5)
        self.faults.append(f"{time.strftime('%H:%M:%S')} broker {broker_id} {state}")

    def slow_stripe(self, delay_ms):
        behaviour = {"latency_ms": 0, "confirm_delay_ms": delay_ms, "webhook_delay_ms": 200, "error_rate": 0.0, "fail_next": 0, "webhooks_enabled": True}
        status, _, _ = http("POST", f"http://127.0.0.1:{self.args.fake_stripe}/_fake/behaviour", behaviour, timeout=5)
        if status != 200:
            self.stats.problem(f"the fake Stripe refused its behaviour: {status}")
        self.faults.append(f"{time.strftime('%H:%M:%S')} fake Stripe confirms take {delay_ms} ms")

    def adyen_behaviour(self, latency_ms):
        """Adyen delivers notifications at least once: the drill's fake sends each twice, always."""
        behaviour = {"latency_ms": latency_ms, "notification_delay_ms": 300, "duplicate_notifications": True}
        status, _, _ = http("POST", f"http://127.0.0.1:{self.args.fake_adyen}/_fake/behaviour", behaviour, timeout=5)
        if status != 200:
            self.stats.problem(f"the fake Adyen refused its behaviour: {status}")
        if latency_ms:
            self.faults.append(f"{time.strftime('%H:%M:%S')} fake Adyen answers take {latency_ms} ms")

    def chaos(self):
        start = time.time()
        pg_at = start + self.args.duration * self.args.pg_restart_at
        pg_done = False
        next_kill = start + self.args.kill_every
        next_broker = start + self.args.broker_every
        next_stripe = start + self.args.broker_every / 2
        while not self.stop_traffic.is_set():
            now = time.time()
            if not pg_done and now >= pg_at and self.args.pg_restart:
                pg_done = True
                self.faults.append(f"{time.strftime('%H:%M:%S')} PostgreSQL restart -m immediate")
                for name in filter(None, self.args.pg_restart_kill.split(",")):
                    threading.Thread(target=self.kill_and_restart, args=(name,), daemon=True).start()
                subprocess.run(self.args.pg_restart, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if now >= next_kill:
                next_kill = now + self.args.kill_every
                threading.Thread(target=self.kill_and_restart, args=(random.choice(self.replicas()),), daemon=True).start()
            if now >= next_broker and self.args.broker_control:
                next_broker = now + self.args.broker_every
                # Broker 1 coordinates the consumer groups and stays up (see the dev broker).
                broker_id = random.randint(2, 3)
                self.broker(broker_id, "down")
                threading.Timer(random.uniform(2, 5), self.broker, args=(broker_id, "up")).start()
            if now >= next_stripe and self.args.fake_stripe:
                next_stripe = now + self.args.broker_every
                self.slow_stripe(4000)
                threading.Timer(5, self.slow_stripe, args=(0,)).start()
                if self.args.fake_adyen:
                    # Beyond the connector timeout: the outcome comes only by notification.
                    self.adyen_behaviour(4000)
                    threading.Timer(5, self.adyen_behaviour, args=(0,)).start()
            time.sleep(0.2)

    # --- afterwards ---------------------------------------------------------------------

    def wait_ready(self):
        ports = []
        for name in self.replicas():
            for line in open(os.path.join(self.args.state, "run", f"{name}.sh")):
                if " HTTP_PORT=" in line:
                    ports.append((name, line.split("HTTP_PORT=")[1].split()[0]))
        deadline = time.time() + self.args.settle
        waiting = ports
        while waiting and time.time() < deadline:
            waiting = [(name, port) for name, port in waiting if http("GET", f"http://127.0.0.1:{port}/ready", timeout=3)[0] != 200]
            if waiting:
                time.sleep(1)
        return [name for name, _ in waiting]

    def psql(self, database, sql):
        result = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.args.pg_port), "-U", "postgres", "-d", database, "-tAc", sql],
                                capture_output=True, text=True)
        if result.returncode != 0:
            self.stats.problem(f"psql: {result.stderr.strip()[:200]}")
            return []
        return [line.split("|") for line in result.stdout.splitlines() if line]

    def settle(self):
        """Waits for every payment, refund and job to reach a final state and for every
        expected webhook, up to --settle seconds. Returns the final views."""
        deadline = time.time() + self.args.settle
        final = {}
        refunds = {}
        while time.time() < deadline:
            for payment_id, payment in list(self.payments.items()):
                if final.get(payment_id) in FINAL_PAYMENT:
                    continue
                status, answer, _ = http("GET", f"{self.base}/payments/{payment_id}", None, {"api-key": payment["merchant"]["key"]})
                if status == 200:
                    final[payment_id] = answer.get("status")
            for refund_id, merchant in list(self.refunds.items()):
                if refunds.get(refund_id) in FINAL_REFUND:
                    continue
                status, answer, _ = http("GET", f"{self.base}/refunds/{refund_id}", None, {"api-key": merchant["key"]})
                if status == 200:
                    refunds[refund_id] = answer.get("status")
            # A cancelled job is settled once every endpoint has heard it (as the check below asks):
            # a delivery held by a killed dispatcher is sent again only after its lease runs out.
            with self.receivers.lock:
                heard = {}
                for (e, o, t) in self.receivers.events:
                    if t == "payment_failed":
                        heard.setdefault(o, set()).add(e)
            jobs_waiting = [j for j, action in self.jobs.items() if action == "cancel_invoice" and heard.get(j, set()) != {"ok", "flaky", "slow"}]
            if all(final.get(p) in FINAL_PAYMENT for p in self.payments) and all(refunds.get(r) in FINAL_REFUND for r in self.refunds) \
                    and not self.missing_webhooks(final, refunds) and not jobs_waiting:
                break
            time.sleep(2)
        return final, refunds

    def expected_webhooks(self, final, refunds):
        expected = set()
        for payment_id, status in final.items():
            if status in ("succeeded", "failed"):
                expected |= {(endpoint, payment_id, f"payment_{status}") for endpoint in ("ok", "flaky", "slow")}
        for refund_id, status in refunds.items():
            if status in FINAL_REFUND:
                expected |= {(endpoint, refund_id, f"refund_{status}") for endpoint in ("ok", "flaky", "slow")}
        return expected

    def missing_webhooks(self, final, refunds):
        with self.receivers.lock:
            seen = set(self.receivers.events)
        return self.expected_webhooks(final, refunds) - seen

    def run(self):
        self.setup()
        threads = [threading.Thread(target=self.client, daemon=True) for _ in range(self.args.clients)]
        for thread in threads:
            thread.start()
        chaos = threading.Thread(target=self.chaos, daemon=True)
        chaos.start()
        log(f"traffic from {self.args.clients} clients for {self.args.duration} s, faults on")
        time.sleep(self.args.duration)
        self.stop_traffic.set()
        chaos.join()
        for thread in threads:
            thread.join(timeout=self.args.settle)
        for broker_id in (1, 2, 3):
            if self.args.broker_control:
                http("POST", f"http://127.0.0.1:{self.args.broker_control}/brokers/{broker_id}/up", None, timeout=5)
        # Replicas killed last may still be starting: they come back by themselves or not at all.
        log("traffic stopped; waiting for every replica to be ready and everything to settle")
        not_ready = self.wait_ready()
        final, refunds = self.settle()
        return self.report(final, refunds, not_ready)

    def report(self, final, refunds, not_ready):
        counts = self.stats.counts
        unknown = [p for p in self.payments if final.get(p) not in FINAL_PAYMENT | UNCONFIRMED]
        unconfirmed = [p for p, info in self.payments.items() if info["confirm"] and final.get(p) in UNCONFIRMED]
        refunds_open = [r for r in self.refunds if refunds.get(r) not in FINAL_REFUND]
        double_charged = []
        for port in (self.args.fake_stripe, self.args.fake_adyen):
            if port:
                charges = (parse(urllib.request.urlopen(f"http://127.0.0.1:{port}/_fake/charges", timeout=5).read()) or {}).get("charges_by_payment", {})
                double_charged += [p for p, n in charges.items() if n > 1]
        sandbox_double = self.psql(self.args.payments_db, "SELECT payment_id FROM payments.payment_attempts WHERE status IN ('charged', 'authorized', 'succeeded') GROUP BY payment_id HAVING count(*) > 1")
        duplicate_rows = self.psql(self.args.webhooks_db, "SELECT object_id, event_type, webhook_endpoint_id FROM webhooks.events GROUP BY 1, 2, 3 HAVING count(*) > 1")
        expected = self.expected_webhooks(final, refunds)
        with self.receivers.lock:
            seen = set(self.receivers.events)
            http_duplicates = sum(n - 1 for n in self.receivers.delivered.values() if n > 1)
            job_finals = {job: {f"{e} {t}": len(ids) for (e, o, t), ids in self.receivers.events.items() if o == job} for job in self.jobs}
        # A cancelled job: one payment_failed at each endpoint; one paid elsewhere: nothing.
        wanted = {"cancel_invoice": {"ok payment_failed": 1, "flaky payment_failed": 1, "slow payment_failed": 1}, "success_payment_external": {}}
        jobs_not_one = [job for job, finals in job_finals.items() if finals != wanted[self.jobs[job]]]
        dead_letters = subprocess.run(["kcat", "-C", "-b", self.args.brokers, "-t", "paywire.deadletter", "-e", "-q", "-f", "%o\n"],
                                      capture_output=True, text=True, timeout=60).stdout.split()
        rows = [
            ("requests sent (first tries)", sum(v for k, v in counts.items() if ".first." in k), None),
            ("  answered 2xx / 202 / 4xx / 5xx / none", " / ".join(str(sum(v for k, v in counts.items() if ".first." in k and k.endswith(s))) for s in ("2xx", "202", "4xx", "5xx", "no_answer")), None),
            ("  in progress (409 IR_39, replayed)", sum(v for k, v in counts.items() if k.endswith("in_progress")), None),
            ("  replays after a fault of ours", sum(v for k, v in counts.items() if ".replay." in k), None),
            ("payments", len(self.payments), None),
            ("  succeeded / failed", f"{sum(1 for s in final.values() if s == 'succeeded')} / {sum(1 for s in final.values() if s == 'failed')}", None),
            ("  of which on Adyen (succeeded / failed)", f"{sum(1 for p, s in final.items() if s == 'succeeded' and self.payments[p]['merchant']['connector'] == 'adyen')} / {sum(1 for p, s in final.items() if s == 'failed' and self.payments[p]['merchant']['connector'] == 'adyen')}", None),
            ("  final state unknown", len(unknown), 0),
            ("  asked to confirm, ended unconfirmed", len(unconfirmed), 0),
            ("  requests never answered with a payment id", counts.get("payments_without_an_id", 0), 0),
            ("valid requests answered 4xx", counts.get("valid_requests_answered_4xx", 0), 0),
            ("requests answered 500", counts.get("answered_500", 0), 0),
            ("charges per payment > 1 (fake Stripe, fake Adyen, sandbox)", len(double_charged) + len(sandbox_double), 0),
            ("refunds / not final", f"{len(self.refunds)} / {len(refunds_open)}", None),
            ("  refunds not final", len(refunds_open), 0),
            ("(event, endpoint) delivered / expected", f"{len(expected & seen)} / {len(expected)}", None),
            ("  expected and not delivered", len(expected - seen), 0),
            ("delivery rows duplicated", len(duplicate_rows), 0),
            ("HTTP duplicates at the receivers", http_duplicates, None),
            ("recovery jobs (cancelled / paid elsewhere)", f"{sum(1 for a in self.jobs.values() if a == 'cancel_invoice')} / {sum(1 for a in self.jobs.values() if a != 'cancel_invoice')}", None),
            ("  jobs without exactly one final event (none if paid elsewhere)", len(jobs_not_one), 0),
            ("dead letters", len(dead_letters), 0),
            ("replicas not ready after the settle", len(not_ready), 0),
            ("faults injected", len(self.faults), None),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"\n{'':{width}}  value   must be")
        failed = []
        for label, value, must in rows:
            ok = must is None or value == must
            if not ok:
                failed.append(label.strip())
            print(f"{label:{width}}  {str(value):7} {'' if must is None else must}{'' if ok else '   ✘'}")
        print()
        details = {"unknown": unknown[:10], "unconfirmed": unconfirmed[:10], "not_delivered": sorted(map(list, expected - seen))[:10],
                   "jobs_not_one": {j: job_finals[j] for j in jobs_not_one[:10]}, "not_ready": not_ready, "double_charged": double_charged + [r[0] for r in sandbox_double],
                   "problems": self.stats.problems[:20], "faults": self.faults}
        if expected - seen:
            # Where each missing delivery stands in the dispatcher's database: its row (state,
            # lease, next attempt) and every attempt recorded for it.
            details["not_delivered_rows"] = []
            for endpoint, object_id, event_type in sorted(expected - seen)[:10]:
                details["not_delivered_rows"] += self.psql(self.args.webhooks_db, f"""
                    SELECT e.event_id, e.delivery_status, e.attempt_count, e.lease_owner, e.lease_until, e.next_attempt_at, e.status_reason, e.created_at,
                           (SELECT string_agg(a.delivery_attempt || ' ' || a.attempt_id || ' ' || COALESCE(a.response_status::text, a.error_message, '') || ' at ' || a.attempted_at, '; ')
                            FROM webhooks.delivery_attempts a WHERE a.event_id = e.event_id)
                    FROM webhooks.events e
                    WHERE e.object_id = '{object_id}' AND e.event_type = '{event_type}' AND e.target_url LIKE '%/{endpoint}'""") or [[endpoint, object_id, event_type, "no row"]]
        if failed:
            print("broken: " + ", ".join(failed))
            print(json.dumps(details, indent=1, default=str)[:8000])
        if self.args.json:
            with open(self.args.json, "w") as out:
                json.dump({"rows": [[r[0].strip(), r[1], r[2]] for r in rows], "broken": failed, "details": details, "counts": counts}, out, indent=1)
        return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", required=True, help="the stack's state directory (run/*.sh, *.pid)")
    parser.add_argument("--base", type=int, required=True, help="the balancer's gateway port")
    parser.add_argument("--duration", type=int, default=600)
    parser.add_argument("--settle", type=int, default=240, help="seconds to wait for everything to settle afterwards")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--merchants", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=8.0)
    parser.add_argument("--broker-every", type=float, default=20.0)
    parser.add_argument("--broker-control", type=int, default=0)
    parser.add_argument("--brokers", default="")
    parser.add_argument("--fake-stripe", type=int, default=0)
    parser.add_argument("--fake-adyen", type=int, default=0)
    parser.add_argument("--pg-port", type=int, required=True)
    parser.add_argument("--pg-restart", default="", help="shell command restarting PostgreSQL")
    parser.add_argument("--pg-restart-kill", default="", help="replicas killed as PostgreSQL restarts (comma-separated, e.g. webhook-dispatcher-1)")
    parser.add_argument("--pg-restart-at", type=float, default=0.4, help="when, as a fraction of the duration")
    parser.add_argument("--payments-db", default="paywire")
    parser.add_argument("--webhooks-db", default="paywire")
    parser.add_argument("--json")
    args = parser.parse_args()
    random.seed()
    sys.exit(Drill(args).run())


if __name__ == "__main__":
    main()
