import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The fake's state and its API. Answers are Adyen's shapes; every modification answers
/// `received` and its outcome is sent later as a signed notification.
final class FakeAdyenState: Sendable {
    let store: Mutex<AdyenStore>
    let logger: Logger

    init(behaviour: AdyenBehaviour, logger: Logger) {
        store = Mutex(AdyenStore(behaviour: behaviour))
        self.logger = logger
    }

    /// Adyen's test `holderName` values and what they trigger: refusal reason code and text,
    /// and the scheme's raw answer where Adyen passes one on.
    static let holderOutcomes: [String: (resultCode: String, code: String, reason: String, raw: String?)] = [
        "DECLINED": ("Refused", "2", "Refused", "05 : Do not honor"),
        "REFERRAL": ("Refused", "3", "Referral", "01 : Refer to card issuer"),
        "BLOCK_CARD": ("Refused", "5", "Blocked Card", "62 : Restricted card"),
        "CARD_EXPIRED": ("Refused", "6", "Expired Card", "54 : Expired card"),
        "INVALID_AMOUNT": ("Refused", "7", "Invalid Amount", "13 : Invalid amount"),
        "ISSUER_UNAVAILABLE": ("Refused", "9", "Issuer Unavailable", "91 : Issuer unavailable"),
        "NOT_ENOUGH_BALANCE": ("Refused", "12", "Not enough balance", "51 : Insufficient funds"),
        "ERROR": ("Error", "0", "Acquirer Error", nil),
    ]

    /// `paywire_decline<N>x_<holder outcome>`: stored details that are refused (as that holder
    /// name is) the first N times, then authorised — funds that come back, for revenue
    /// recovery. The fake's own, not one of Adyen's test values.
    func storedDetailsOutcome(_ token: String, store: inout AdyenStore) -> (resultCode: String, code: String, reason: String, raw: String?)? {
        guard token.hasPrefix("paywire_decline") else { return nil }
        let parts = token.dropFirst("paywire_decline".count).split(separator: "_", maxSplits: 1)
        guard parts.count == 2, parts[0].hasSuffix("x"), let times = Int(parts[0].dropLast()) else { return nil }
        let made = store.payments.values.filter { $0.attemptId?.hasPrefix("token:" + token) == true }.count
        return made < times ? Self.holderOutcomes[String(parts[1])] : nil
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.post("/_fake/behaviour") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            let update = try JSONDecoder().decode(AdyenBehaviour.self, from: Data(buffer: body))
            self.store.withLock { $0.behaviour = update }
            return Self.json(200, ["ok": true])
        }
        router.get("/_fake/stats") { _, _ in
            let stats = self.store.withLock { store -> [String: Any] in
                ["payments": store.payments.count, "charges": store.charges, "modifications": store.modifications,
                 "cont_auth_payments": store.contAuthPayments,
                 "notifications_sent": store.notificationsSent, "notifications_dropped": store.notificationsDropped, "held": store.held.count]
            }
            return Self.json(200, stats)
        }
        router.get("/_fake/charges") { _, _ in
            Self.json(200, ["charges_by_payment": self.store.withLock { $0.chargesByReference }])
        }
        router.post("/_fake/notifications/release") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            let options = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Bool] ?? [:]
            var held = self.store.withLock { store in
                defer { store.held = [] }
                return store.held
            }
            if options["reverse"] == true { held.reverse() }
            if options["duplicate"] == true { held = held.flatMap { [$0, $0] } }
            let count = held.count
            if options["batch"] == true {
                await self.send(held)
            } else {
                for notification in held { await self.send([notification]) }
            }
            return Self.json(200, ["released": count])
        }
        addManagementRoutes(to: router)
        addPaymentRoutes(to: router)
        addDisputeRoutes(to: router)
    }

    /// The Management API's webhook and its HMAC key (hex), per merchant account.
    func addManagementRoutes(to router: Router<BasicRequestContext>) {
        router.post("/management/v3/merchants/:account/webhooks") { request, context in
            try await self.api(request, context) { body in
                let account = try context.parameters.require("account")
                guard let url = body["url"] as? String, URL(string: url)?.scheme != nil else { return Self.error(422, "702", "url is required") }
                let id = "WBHK" + Self.random(16).uppercased()
                self.store.withLock { $0.webhooks[account, default: []].append((id, url, nil)) }
                return (200, ["id": id, "url": url, "active": true, "type": "standard"])
            }
        }
        router.post("/management/v3/merchants/:account/webhooks/:id/generateHmac") { request, context in
            try await self.api(request, context) { _ in
                let account = try context.parameters.require("account")
                let id = try context.parameters.require("id")
                let key = (0..<32).map { _ in String(format: "%02X", UInt8.random(in: 0...255)) }.joined()
                let found = self.store.withLock { store -> Bool in
                    guard let index = store.webhooks[account]?.firstIndex(where: { $0.id == id }) else { return false }
                    store.webhooks[account]![index].hmacKey = key
                    return true
                }
                guard found else { return Self.error(404, "000", "No such webhook") }
                return (200, ["hmacKey": key])
            }
        }
    }

    func addPaymentRoutes(to router: Router<BasicRequestContext>) {
        router.post("/v68/payments") { request, context in
            try await self.api(request, context) { body in
                guard let account = body["merchantAccount"] as? String, !account.isEmpty else { return Self.error(422, "14_005", "Required field 'merchantAccount' is not provided.") }
                guard let amount = body["amount"] as? [String: Any], let value = (amount["value"] as? NSNumber)?.intValue, value >= 0,
                      let currency = amount["currency"] as? String, currency.count == 3 else { return Self.error(422, "100", "Required field 'amount' is not provided.") }
                guard let reference = body["reference"] as? String, !reference.isEmpty else { return Self.error(422, "130", "Required field 'reference' is not provided.") }
                let method = body["paymentMethod"] as? [String: Any] ?? [:]
                let metadata = body["metadata"] as? [String: String] ?? [:]
                let manual = (body["additionalData"] as? [String: String])?["manualCapture"] == "true"
                var outcome: (resultCode: String, code: String, reason: String, raw: String?)?
                var attemptMarker = metadata["attempt_id"]
                if let stored = method["storedPaymentMethodId"] as? String {
                    guard body["shopperReference"] != nil else { return Self.error(422, "15_001", "Required field 'shopperReference' is not provided.") }
                    guard body["recurringProcessingModel"] != nil else { return Self.error(422, "15_002", "Required field 'recurringProcessingModel' is not provided.") }
                    if body["shopperInteraction"] as? String == "ContAuth" { self.store.withLock { $0.contAuthPayments += 1 } }
                    outcome = self.store.withLock { self.storedDetailsOutcome(stored, store: &$0) }
                    attemptMarker = "token:\(stored):\(metadata["attempt_id"] ?? "")"
                } else {
                    guard let number = method["number"] as? String, number.count >= 12, number.count <= 19, number.allSatisfy(\.isNumber), Self.luhn(number) else {
                        return Self.error(422, "101", "Invalid card number")
                    }
                    outcome = Self.holderOutcomes[(method["holderName"] as? String ?? "").uppercased()]
                }
                if self.store.withLock({ $0.technicallyCancelled.contains("\(account)|\(reference)") }) {
                    outcome = ("Cancelled", "15", "Cancelled", nil)
                }
                var payment = AdyenPayment(pspReference: Self.psp(), merchantAccount: account, reference: reference, attemptId: attemptMarker,
                                           amount: value, currency: currency, manualCapture: manual, resultCode: outcome?.resultCode ?? "Authorised")
                if outcome == nil && !manual { payment.captured = value }
                self.store.withLock { store in
                    store.sequence += 1
                    payment.sequence = store.sequence
                    store.payments[payment.pspReference] = payment
                    if outcome == nil {
                        store.charges += 1
                        store.chargesByReference[reference, default: 0] += 1
                    }
                }
                var answer: [String: Any] = ["pspReference": payment.pspReference, "resultCode": payment.resultCode, "merchantReference": reference,
                                             "amount": ["currency": currency, "value": value]]
                var additional: [String: String] = ["metadata.attempt_id": metadata["attempt_id"] ?? ""]
                if let outcome {
                    answer["refusalReason"] = outcome.reason
                    answer["refusalReasonCode"] = outcome.code
                    additional["refusalReasonCode"] = outcome.code
                    if let raw = outcome.raw {
                        answer["additionalData"] = ["refusalReasonRaw": raw]
                        additional["refusalReasonRaw"] = raw
                    }
                }
                self.notify(PendingNotification(merchantAccount: account, item: [
                    "eventCode": "AUTHORISATION", "pspReference": payment.pspReference, "originalReference": "", "merchantReference": reference,
                    "success": outcome == nil ? "true" : "false", "reason": outcome?.reason ?? "",
                ], amount: value, currency: currency, additional: additional))
                return (200, answer)
            }
        }
        // Technical cancel: by our reference, for a payment whose pspReference was never learned.
        router.post("/v68/cancels") { request, context in
            try await self.api(request, context) { body in self.technicalCancel(body) }
        }
        for kind in ["captures", "cancels", "refunds"] {
            router.post("/v68/payments/:psp/\(kind)") { request, context in
                try await self.api(request, context) { body in
                    let psp = try context.parameters.require("psp")
                    return self.modify(kind: kind, psp: psp, body: body)
                }
            }
        }
    }

    /// A capture, cancel or refund: checked enough to answer like Adyen, answered `received`,
    /// and its outcome notified.
    func modify(kind: String, psp: String, body: [String: Any]) -> (Int, [String: Any]) {
        let amount = body["amount"] as? [String: Any]
        let value = (amount?["value"] as? NSNumber)?.intValue
        let reference = body["reference"] as? String ?? ""
        let modificationPsp = Self.psp()
        let outcome: (Bool, PendingNotification)? = store.withLock { store in
            guard var payment = store.payments[psp], payment.merchantAccount == body["merchantAccount"] as? String else { return nil }
            store.modifications += 1
            var success = payment.resultCode == "Authorised"
            let code: String
            var notified = value ?? payment.amount
            switch kind {
            case "captures":
                code = "CAPTURE"
                success = success && payment.manualCapture && payment.captured == 0 && !payment.cancelled && notified > 0 && notified <= payment.amount
                if success { payment.captured = notified }
            case "cancels":
                code = "CANCELLATION"
                success = success && payment.captured == 0 && !payment.cancelled
                notified = payment.amount
                if success { payment.cancelled = true }
            default:
                code = "REFUND"
                success = success && notified > 0 && payment.refunded + notified <= payment.captured
                if success { payment.refunded += notified }
            }
            store.payments[psp] = payment
            return (success, PendingNotification(merchantAccount: payment.merchantAccount, item: [
                "eventCode": code, "pspReference": modificationPsp, "originalReference": psp, "merchantReference": reference,
                "success": success ? "true" : "false", "reason": success ? "" : "Modification not allowed in the payment's state",
            ], amount: notified, currency: payment.currency, additional: [:]))
        }
        guard let (_, notification) = outcome else { return Self.error(422, "167", "Original pspReference required for this operation") }
        notify(notification)
        var answer: [String: Any] = ["merchantAccount": notification.merchantAccount, "paymentPspReference": psp, "pspReference": modificationPsp,
                                     "reference": reference, "status": "received"]
        if let amount { answer["amount"] = amount }
        return (201, answer)
    }

    /// Adyen's technical cancel (`POST /cancels` with `paymentReference`): cancels the latest
    /// payment made with that reference — an authorised one is released unless money has already
    /// moved (a manual capture, a refund), a refused one has nothing to release — and notifies
    /// TECHNICAL_CANCEL. A reference Adyen has not seen is remembered, so an authorisation that
    /// arrives after its cancel is not made (the fake's reading of "cancel by reference").
    func technicalCancel(_ body: [String: Any]) -> (Int, [String: Any]) {
        guard let account = body["merchantAccount"] as? String, !account.isEmpty else { return Self.error(422, "14_005", "Required field 'merchantAccount' is not provided.") }
        guard let paymentReference = body["paymentReference"] as? String, !paymentReference.isEmpty else {
            return Self.error(422, "130", "Required field 'paymentReference' is not provided.")
        }
        let reference = body["reference"] as? String ?? ""
        let cancelPsp = Self.psp()
        let notification = store.withLock { store -> PendingNotification in
            store.modifications += 1
            let latest = store.payments.values.filter { $0.reference == paymentReference && $0.merchantAccount == account }.max { $0.sequence < $1.sequence }
            guard var payment = latest else {
                store.technicallyCancelled.insert("\(account)|\(paymentReference)")
                return PendingNotification(merchantAccount: account, item: [
                    "eventCode": "TECHNICAL_CANCEL", "pspReference": cancelPsp, "originalReference": "", "merchantReference": reference, "success": "true", "reason": "",
                ], amount: 0, currency: "EUR", additional: [:])
            }
            let authorised = payment.resultCode == "Authorised" && !payment.cancelled
            let moved = payment.refunded > 0 || (payment.manualCapture && payment.captured > 0)
            let success = !authorised || !moved
            if authorised && success {
                // An automatic capture is settled later in Adyen's batch: until then it can be released.
                payment.cancelled = true
                payment.captured = 0
                store.payments[payment.pspReference] = payment
                store.chargesByReference[paymentReference, default: 1] -= 1
            }
            return PendingNotification(merchantAccount: account, item: [
                "eventCode": "TECHNICAL_CANCEL", "pspReference": cancelPsp, "originalReference": payment.pspReference, "merchantReference": reference,
                "success": success ? "true" : "false", "reason": success ? "" : "Modification not allowed in the payment's state",
            ], amount: payment.amount, currency: payment.currency, additional: [:])
        }
        notify(notification)
        return (201, ["merchantAccount": account, "paymentReference": paymentReference, "pspReference": cancelPsp, "reference": reference, "status": "received"])
    }

    // MARK: Notifications

    /// Sends (or holds, or loses) one item, after the configured delay, as a request of its own.
    func notify(_ notification: PendingNotification) {
        let behaviour = store.withLock { $0.behaviour }
        guard behaviour.notificationsEnabled else { return }
        if behaviour.holdNotifications {
            store.withLock { $0.held.append(notification) }
            return
        }
        if behaviour.dropRate > 0 && Double.random(in: 0..<1) < behaviour.dropRate {
            store.withLock { $0.notificationsDropped += 1 }
            return
        }
        Task {
            try? await Task.sleep(for: .milliseconds(behaviour.notificationDelayMs))
            await self.send([notification])
            if behaviour.duplicateNotifications { await self.send([notification]) }
        }
    }

    /// One request with these items, signed item by item, to each webhook of their merchant
    /// account; retried with backoff (up to 10 s apart, about two minutes in all) until answered
    /// `[accepted]`, as Adyen retries (it goes on for days).
    func send(_ notifications: [PendingNotification]) async {
        let byAccount = Dictionary(grouping: notifications, by: \.merchantAccount)
        for (account, items) in byAccount {
            let hooks = store.withLock { $0.webhooks[account] ?? [] }
            for hook in hooks {
                guard let key = hook.hmacKey.flatMap(Self.bytes(hex:)) else { continue }
                let wrapped: [[String: Any]] = items.map { notification in
                    var item: [String: Any] = notification.item
                    item["merchantAccountCode"] = account
                    item["amount"] = ["currency": notification.currency, "value": notification.amount]
                    item["eventDate"] = ISO8601DateFormatter().string(from: Date())
                    var additional = notification.additional
                    additional["hmacSignature"] = Self.sign(notification, account: account, key: key)
                    item["additionalData"] = additional
                    return ["NotificationRequestItem": item]
                }
                guard let body = try? JSONSerialization.data(withJSONObject: ["live": "false", "notificationItems": wrapped], options: [.sortedKeys]) else { continue }
                for attempt in 0..<16 {
                    var request = HTTPClientRequest(url: hook.url)
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(bytes: body))
                    if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(10)) {
                        let answer = try? await response.body.collect(upTo: 1 << 16)
                        if response.status == .ok, answer.map({ String(buffer: $0).contains("[accepted]") }) == true {
                            store.withLock { $0.notificationsSent += items.count }
                            break
                        }
                    }
                    logger.warning("notification not accepted; retrying", metadata: ["url": .string(hook.url), "attempt": .stringConvertible(attempt + 1)])
                    try? await Task.sleep(for: .milliseconds(min(500 << attempt, 10_000)))
                }
            }
        }
    }

    /// Adyen's HMAC: SHA-256 over the eight colon-joined fields, key from hex, base64.
    static func sign(_ notification: PendingNotification, account: String, key: [UInt8]) -> String {
        let item = notification.item
        let signed = [item["pspReference"] ?? "", item["originalReference"] ?? "", account, item["merchantReference"] ?? "",
                      String(notification.amount), notification.currency, item["eventCode"] ?? "", item["success"] ?? ""].joined(separator: ":")
        return Data(HMAC<SHA256>.authenticationCode(for: Data(signed.utf8), using: SymmetricKey(data: key))).base64EncodedString()
    }

    // MARK: Plumbing

    /// Checks the API key, applies latency and injected failures, replays idempotent requests.
    func api(_ request: Request, _ context: BasicRequestContext, _ handle: ([String: Any]) async throws -> (Int, [String: Any])) async throws -> Response {
        guard let apiKey = request.headers[.init("X-API-Key")!], !apiKey.isEmpty else {
            return Self.respond(Self.error(401, "000", "HTTP Status Response - Unauthorized", type: "security"))
        }
        let behaviour = store.withLock { store -> AdyenBehaviour in
            let current = store.behaviour
            if store.behaviour.failNext > 0 { store.behaviour.failNext -= 1 }
            return current
        }
        if behaviour.latencyMs > 0 { try await Task.sleep(for: .milliseconds(behaviour.latencyMs)) }
        if behaviour.failNext > 0 || (behaviour.errorRate > 0 && Double.random(in: 0..<1) < behaviour.errorRate) {
            return Self.respond(Self.error(500, "905", "Internal error", type: "internal"))
        }
        let key = request.headers[.init("Idempotency-Key")!].map { "\(apiKey.suffix(8))|\(request.uri.path)|\($0)" }
        if let key, let (status, body) = store.withLock({ $0.idempotent[key] }) {
            return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        let raw = try await request.body.collect(upTo: 1 << 20)
        guard let body = (try? JSONSerialization.jsonObject(with: Data(buffer: raw))) as? [String: Any] else {
            return Self.respond(Self.error(400, "702", "Structure of the request is invalid", type: "validation"))
        }
        let (status, object) = try await handle(body)
        let encoded = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        if let key, status < 500 { store.withLock { $0.idempotent[key] = (status, encoded) } }
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: encoded)))
    }

    static func error(_ status: Int, _ code: String, _ message: String, type: String = "validation") -> (Int, [String: Any]) {
        (status, ["status": status, "errorCode": code, "message": message, "errorType": type])
    }

    static func respond(_ answer: (Int, [String: Any])) -> Response { json(answer.0, answer.1) }

    static func json(_ status: Int, _ object: [String: Any]) -> Response {
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func psp() -> String { String((0..<16).map { _ in "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ".randomElement()! }) }

    static func random(_ length: Int) -> String {
        String((0..<length).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
    }

    static func luhn(_ number: String) -> Bool {
        let digits = number.reversed().compactMap { $0.wholeNumberValue }
        let sum = digits.enumerated().reduce(0) { total, pair in
            let (index, digit) = pair
            guard index % 2 == 1 else { return total + digit }
            let doubled = digit * 2
            return total + (doubled > 9 ? doubled - 9 : doubled)
        }
        return sum % 10 == 0
    }

    static func bytes(hex: String) -> [UInt8]? {
        guard hex.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
