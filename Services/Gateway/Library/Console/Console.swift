import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import Mustache
import NIOCore
import PaywireKafka
import PaywireModels
import PaywireRuntime

/// The merchant console at `/console`: server-rendered pages over the gateway's own API
/// (`ConsoleAPIClient`), working without script. A session is a row in the gateway's database
/// holding the API key signed in with; the browser holds only an HttpOnly, SameSite=Strict cookie.
/// Every form carries the session's CSRF token, and every page is sent with a policy that allows
/// no script and no inline style.
struct Console: Sendable {
    let api: ConsoleAPIClient
    let sessions: ConsoleSessionStore
    let authentication: GatewayAuthentication
    /// The other services' base URLs, for the operator's readiness table.
    let services: [(name: String, url: String)]
    let kafka: KafkaConfiguration
    let deadLetterTopic: String
    /// Set the cookie's Secure attribute on every answer (`PAYWIRE_CONSOLE_SECURE_COOKIE=1`), not
    /// only when a proxy says the browser came over TLS.
    let alwaysSecure: Bool
    let logger: Logger

    static let environmentKeys = ConsoleSessionStore.environmentKeys + ["PAYWIRE_CONSOLE_SECURE_COOKIE"]
    static let sessionCookie = "paywire_console"
    static let signInCookie = "paywire_console_sign_in"

    func addRoutes(to router: Router<PaywireRequestContext>) {
        let console = router.group("/console").add(middleware: ConsoleMiddleware(logger: logger))
        console.get("/static/console.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=300"],
                     body: .init(byteBuffer: ByteBuffer(string: ConsoleTemplates.stylesheet)))
        }
        console.get { request, context in
            let session = try await signedIn(request)
            return ConsoleRedirect.to(session?.merchantId != nil ? "/console/endpoints" : session != nil ? "/console/operator" : "/console/sign-in")
        }
        console.get("/sign-in") { request, _ in
            try await signInPage(request, problem: nil, status: .ok)
        }
        console.post("/sign-in") { request, context in try await signIn(request, context) }
        console.post("/sign-out") { request, context in
            let (_, _, token) = try await submitted(request, context)
            try await sessions.delete(token: token)
            var response = ConsoleRedirect.to("/console/sign-in")
            response.setCookie(Cookie(name: Self.sessionCookie, value: "", maxAge: 0, path: "/console", secure: isSecure(request), httpOnly: true, sameSite: .strict))
            return response
        }

        console.get("/endpoints") { request, context in try await endpointsPage(request, context) }
        console.post("/endpoints") { request, context in try await createEndpoint(request, context) }
        console.get("/endpoints/:profile_id/:endpoint_id") { request, context in try await endpointPage(request, context) }
        console.post("/endpoints/:profile_id/:endpoint_id/:action") { request, context in try await changeEndpoint(request, context) }

        console.get("/events") { request, context in try await eventsPage(request, context) }
        console.get("/events/:event_id") { request, context in try await eventPage(request, context) }
        console.post("/events/:event_id/retry") { request, context in
            let (session, _, _) = try await submitted(request, context)
            let merchantId = try merchant(of: session)
            let eventId = try context.pathParameter("event_id")
            let answer = try await api.post("/events/\(Self.escape(merchantId))/\(Self.escape(eventId))/retry", key: session.apiKey, context: context)
            try check(answer, what: "Event")
            let notice = answer.status == 202 ? "retry-pending" : (answer.json?["is_delivery_successful"] == .bool(true) ? "retry-delivered" : "retry-failed")
            return ConsoleRedirect.to("/console/events/\(Self.escape(eventId))?notice=\(notice)")
        }

        console.get("/payments") { request, context in try await paymentsPage(request, context) }
        console.get("/payments/:payment_id") { request, context in try await paymentPage(request, context) }
        console.get("/refunds") { request, context in try await refundsPage(request, context) }
        console.get("/disputes") { request, context in try await disputesPage(request, context) }
        console.get("/disputes/:dispute_id") { request, context in try await disputePage(request, context) }
        console.post("/disputes/:dispute_id/accept") { request, context in
            let (session, _, _) = try await submitted(request, context)
            _ = try merchant(of: session)
            let disputeId = try context.pathParameter("dispute_id")
            let answer = try await api.post("/disputes/accept/\(Self.escape(disputeId))", key: session.apiKey, context: context)
            try check(answer, what: "Dispute")
            return ConsoleRedirect.to("/console/disputes/\(Self.escape(disputeId))?notice=dispute-accepted")
        }
        console.get("/recovery") { request, context in
            if let id = request.uri.queryParameters["payment_id"].map(String.init), !id.isEmpty {
                return ConsoleRedirect.to("/console/recovery/\(Self.escape(id))")
            }
            let session = try await requireSession(request)
            _ = try merchant(of: session)
            return try page("recovery", title: "Recovery jobs", session: session, request: request, values: [:])
        }
        console.get("/recovery/:payment_id") { request, context in try await recoveryPage(request, context) }

        console.get("/operator") { request, context in try await operatorPage(request, context) }
        console.post("/operator/merchant") { request, context in
            let (session, form, token) = try await submitted(request, context)
            guard session.isOperator else { throw ConsolePageError(status: .forbidden, text: "This page is the operator's: sign in with the admin key.") }
            let merchantId = try form.required("merchant_id")
            try InputText.checkIdentifierText(merchantId, field: "merchant_id")
            let answer = try await api.get("/accounts/\(Self.escape(merchantId))", key: session.apiKey, context: context)
            try check(answer, what: "Merchant account")
            try await sessions.choose(merchantId: merchantId, token: token)
            return ConsoleRedirect.to("/console/endpoints")
        }
    }

    // MARK: Sessions

    /// The session the request's cookie names, or nil.
    func signedIn(_ request: Request) async throws -> ConsoleSession? {
        guard let token = request.cookies[Self.sessionCookie]?.value else { return nil }
        return try await sessions.find(token: token)
    }

    /// The request's session; without one, the browser is sent to sign in.
    func requireSession(_ request: Request) async throws -> ConsoleSession {
        guard let session = try await signedIn(request) else { throw ConsoleRedirect(location: "/console/sign-in") }
        return session
    }

    /// A form posted by a signed-in browser, with its CSRF token checked: the session, the form
    /// and the cookie's token.
    func submitted(_ request: Request, _ context: PaywireRequestContext) async throws -> (ConsoleSession, ConsoleForm, String) {
        guard let token = request.cookies[Self.sessionCookie]?.value, let session = try await sessions.find(token: token) else {
            throw ConsoleRedirect(location: "/console/sign-in")
        }
        let form = try await ConsoleForm.read(request, context: context)
        guard Self.sameSecret(form["csrf_token"], session.csrfToken) else { throw ConsolePageError.csrf }
        return (session, form, token)
    }

    func merchant(of session: ConsoleSession) throws -> String {
        guard let merchantId = session.merchantId else { throw ConsoleRedirect(location: "/console/operator") }
        return merchantId
    }

    func signInPage(_ request: Request, problem: String?, status: HTTPResponse.Status) async throws -> Response {
        // The sign-in form's token is a cookie of its own (there is no session yet): the form must
        // send back the same value, which a page on another site can neither read nor set.
        let token = Identifier.random(43)
        var response = try render("sign-in", status: status, values: ["title": "Sign in", "signInToken": token, "problem": Self.shown(problem)])
        response.setCookie(Cookie(name: Self.signInCookie, value: token, maxAge: 3600, path: "/console", secure: isSecure(request), httpOnly: true, sameSite: .strict))
        return response
    }

    func signIn(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let form = try await ConsoleForm.read(request, context: context)
        guard let expected = request.cookies[Self.signInCookie]?.value, Self.sameSecret(form["csrf_token"], expected) else { throw ConsolePageError.csrf }
        guard let key = form["api_key"], key.utf8.count <= 256 else {
            return try await signInPage(request, problem: "api_key: is required", status: .badRequest)
        }
        let caller = try await authentication.identify(key: key)
        let session: (token: String, session: ConsoleSession)
        switch caller {
        case .admin: session = try await sessions.create(isOperator: true, merchantId: nil, apiKey: key)
        case .merchant(let merchantId): session = try await sessions.create(isOperator: false, merchantId: merchantId, apiKey: key)
        case .publishable, nil:
            logger.info("console sign-in refused")
            return try await signInPage(request, problem: "api_key: not a valid secret API key", status: .unauthorized)
        }
        var response = ConsoleRedirect.to(session.session.isOperator ? "/console/operator" : "/console/endpoints")
        response.setCookie(Cookie(name: Self.sessionCookie, value: session.token, maxAge: Int(sessions.absoluteLifetime.components.seconds),
                                  path: "/console", secure: isSecure(request), httpOnly: true, sameSite: .strict))
        response.setCookie(Cookie(name: Self.signInCookie, value: "", maxAge: 0, path: "/console", secure: isSecure(request), httpOnly: true, sameSite: .strict))
        return response
    }

    /// Secure cookies when the browser came over TLS: a proxy in front says so in
    /// `X-Forwarded-Proto`, or the operator sets `PAYWIRE_CONSOLE_SECURE_COOKIE=1`.
    func isSecure(_ request: Request) -> Bool {
        alwaysSecure || request.headers[.init("x-forwarded-proto")!]?.lowercased() == "https" || request.head.scheme == "https"
    }

    // MARK: Webhook endpoints

    func endpointsPage(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let session = try await requireSession(request)
        let merchantId = try merchant(of: session)
        var values: [String: Any] = ["eventChoices": Self.eventChoices(checked: [])]
        values["profiles"] = try await profiles(merchantId: merchantId, session: session, context: context)
        return try page("endpoints", title: "Webhook endpoints", session: session, request: request, values: values)
    }

    func profiles(merchantId: String, session: ConsoleSession, context: PaywireRequestContext) async throws -> [[String: Any]] {
        let answer = try await api.get("/account/\(Self.escape(merchantId))/business_profile", key: session.apiKey, context: context)
        try check(answer, what: "Merchant account")
        var profiles: [[String: Any]] = []
        for case .object(let profile) in answer.json?.arrayValue ?? [] {
            guard let profileId = profile["profile_id"]?.stringValue else { continue }
            let listed = try await api.get("/account/\(Self.escape(merchantId))/business_profile/\(Self.escape(profileId))/webhooks", key: session.apiKey, context: context)
            try check(listed, what: "Business profile")
            // Health is in each endpoint's own answer (at most 20 a profile), asked side by side.
            let detailed = await withTaskGroup(of: (Int, JSONValue).self) { group in
                for (index, item) in (listed.json?.arrayValue ?? []).enumerated() {
                    guard let id = item["webhook_endpoint_id"]?.stringValue else { continue }
                    group.addTask {
                        let detail = try? await api.get("/account/\(Self.escape(merchantId))/business_profile/\(Self.escape(profileId))/webhooks/\(Self.escape(id))", key: session.apiKey, context: context)
                        return (index, detail?.isSuccess == true ? detail?.json ?? item : item)
                    }
                }
                var found: [(Int, JSONValue)] = []
                for await entry in group { found.append(entry) }
                return found.sorted { $0.0 < $1.0 }.map(\.1)
            }
            let endpoints = detailed.map { Self.endpointValues($0, profileId: profileId) }
            profiles.append(["profile_id": profileId, "profile_name": profile["profile_name"]?.stringValue ?? profileId, "endpoints": endpoints])
        }
        return profiles
    }

    static func endpointValues(_ endpoint: JSONValue, profileId: String) -> [String: Any] {
        let health = endpoint["health"]
        let rate = health?["success_rate_last_hour"]?.numberValue
        let status = endpoint["status"]?.stringValue ?? "unknown"
        return [
            "profile_id": profileId,
            "webhook_endpoint_id": endpoint["webhook_endpoint_id"]?.stringValue ?? "",
            "webhook_url": endpoint["webhook_url"]?.stringValue ?? "",
            "status": status, "active": status == "active", "deprecated": status == "deprecated",
            "events": (endpoint["events"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", "),
            "last_success_at": health?["last_success_at"]?.stringValue ?? "never",
            "last_failure_at": health?["last_failure_at"]?.stringValue ?? "never",
            "consecutive_failures": health?["consecutive_failures"]?.numberValue.map { String(Int($0)) } ?? "",
            "attempts_last_hour": health?["attempts_last_hour"]?.numberValue.map { String(Int($0)) } ?? "0",
            "success_rate": rate.map { String(format: "%.0f %%", $0 * 100) } ?? "no attempts",
            "inactive_reason": shown(health?["inactive_reason"]?.stringValue),
        ]
    }

    func createEndpoint(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let (session, form, _) = try await submitted(request, context)
        let merchantId = try merchant(of: session)
        let profileId = try form.required("profile_id")
        try InputText.checkIdentifierText(profileId, field: "profile_id")
        let body: JSONValue = .object(["webhook_url": .string(form["webhook_url"] ?? ""), "events": .array(form.all("events").map(JSONValue.string))])
        let answer = try await api.post("/account/\(Self.escape(merchantId))/business_profile/\(Self.escape(profileId))/webhooks", key: session.apiKey, body: body, context: context)
        guard answer.isSuccess else {
            try check(answer, what: "Business profile", refusalsAsPages: false)
            var values: [String: Any] = ["eventChoices": Self.eventChoices(checked: Set(form.all("events"))), "problem": answer.errorMessage]
            values["profiles"] = try await profiles(merchantId: merchantId, session: session, context: context)
            return try page("endpoints", title: "Webhook endpoints", session: session, request: request, values: values, status: .badRequest)
        }
        return try secretPage(answer, profileId: profileId, rotated: false, session: session, request: request)
    }

    func secretPage(_ answer: ConsoleAPIClient.Answer, profileId: String, rotated: Bool, session: ConsoleSession, request: Request) throws -> Response {
        let endpointId = answer.json?["webhook_endpoint_id"]?.stringValue ?? ""
        let secret = answer.json?["signing_secret"]?.stringValue ?? ""
        return try page("secret", title: rotated ? "New signing secret" : "Endpoint added", session: session, request: request,
                        values: ["endpointId": endpointId, "profileId": profileId, "secret": secret, "rotated": rotated])
    }

    func endpointPage(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let session = try await requireSession(request)
        let merchantId = try merchant(of: session)
        let (profileId, endpointId) = (try context.pathParameter("profile_id"), try context.pathParameter("endpoint_id"))
        let answer = try await api.get(endpointPath(merchantId, profileId, endpointId), key: session.apiKey, context: context)
        try check(answer, what: "Webhook endpoint")
        let endpoint = Self.endpointValues(answer.json ?? .null, profileId: profileId)
        let checked = Set((answer.json?["events"]?.arrayValue ?? []).compactMap(\.stringValue))
        let since = Date().addingTimeInterval(-86_400)
        return try page("endpoint", title: "Endpoint \(endpointId)", session: session, request: request, values: [
            "endpoint": endpoint, "eventChoices": Self.eventChoices(checked: checked), "recoverSince": Self.localInput(since),
        ])
    }

    func endpointPath(_ merchantId: String, _ profileId: String, _ endpointId: String) -> String {
        "/account/\(Self.escape(merchantId))/business_profile/\(Self.escape(profileId))/webhooks/\(Self.escape(endpointId))"
    }

    func changeEndpoint(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let (session, form, _) = try await submitted(request, context)
        let merchantId = try merchant(of: session)
        let (profileId, endpointId) = (try context.pathParameter("profile_id"), try context.pathParameter("endpoint_id"))
        let path = endpointPath(merchantId, profileId, endpointId)
        let back = "/console/endpoints/\(Self.escape(profileId))/\(Self.escape(endpointId))"
        let answer: ConsoleAPIClient.Answer
        let notice: String
        switch try context.pathParameter("action") {
        case "events":
            answer = try await api.post(path, key: session.apiKey, body: .object(["events": .array(form.all("events").map(JSONValue.string))]), context: context)
            notice = "endpoint-saved"
        case "disable":
            answer = try await api.post(path, key: session.apiKey, body: .object(["status": .string("inactive")]), context: context)
            notice = "endpoint-disabled"
        case "enable":
            answer = try await api.post(path, key: session.apiKey, body: .object(["status": .string("active")]), context: context)
            notice = "endpoint-enabled"
        case "delete":
            answer = try await api.delete(path, key: session.apiKey, context: context)
            try check(answer, what: "Webhook endpoint")
            return ConsoleRedirect.to("/console/endpoints?notice=endpoint-deleted")
        case "rotate":
            answer = try await api.post(path + "/rotate_secret", key: session.apiKey, context: context)
            try check(answer, what: "Webhook endpoint")
            return try secretPage(answer, profileId: profileId, rotated: true, session: session, request: request)
        case "recover":
            let since = try Self.parseLocalInput(try form.required("since"), field: "since")
            answer = try await api.post("/events/\(Self.escape(merchantId))/recover", key: session.apiKey,
                                        body: .object(["webhook_endpoint_id": .string(endpointId), "since": .string(PaywireJSON.format(since))]), context: context)
            try check(answer, what: "Webhook endpoint", refusalsAsPages: true)
            let count = answer.json?["scheduled"]?.numberValue ?? 0
            return ConsoleRedirect.to(back + "?notice=recovered&count=\(Int(count))")
        default:
            throw ConsolePageError(status: .notFound, text: "There is no such action.")
        }
        try check(answer, what: "Webhook endpoint", refusalsAsPages: true)
        return ConsoleRedirect.to(back + "?notice=\(notice)")
    }

    // MARK: Events log

    func eventsPage(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let session = try await requireSession(request)
        let merchantId = try merchant(of: session)
        let query = request.uri.queryParameters
        // The API's own filters, passed on as given (it names a bad one); empty fields are none.
        var pairs: [(String, String)] = []
        for name in ["object_id", "webhook_endpoint_id", "profile_id", "event_types", "event_classes", "is_delivered", "created_after", "created_before", "offset"] {
            for value in query.getAll(name) where !value.isEmpty { pairs.append((name, String(value))) }
        }
        let limit = 50
        let answer = try await api.get("/events/\(Self.escape(merchantId))?" + Self.queryString(pairs + [("limit", String(limit))]), key: session.apiKey, context: context)
        try check(answer, what: "Merchant account", refusalsAsPages: true)
        let events = (answer.json?["events"]?.arrayValue ?? []).map { event -> [String: Any] in
            var values = Self.strings(event, ["event_id", "event_type", "object_id", "delivery_status", "created"])
            values["webhook_endpoint_id"] = event["webhook_endpoint_id"]?.stringValue ?? "(account URL)"
            values["attempt_count"] = event["attempt_count"]?.numberValue.map { String(Int($0)) } ?? ""
            return values
        }
        let offset = Int(query["offset"].map(String.init) ?? "") ?? 0
        let total = Int(answer.json?["total_count"]?.numberValue ?? 0)
        let next = offset + events.count < total ? Self.queryString(pairs.filter { $0.0 != "offset" } + [("offset", String(offset + events.count))]) : nil
        let chosenType = query["event_types"].map(String.init)
        let filters: [String: Any] = [
            "object_id": query["object_id"].map(String.init) ?? "", "webhook_endpoint_id": query["webhook_endpoint_id"].map(String.init) ?? "",
            "delivered": query["is_delivered"] == "true", "undelivered": query["is_delivered"] == "false",
        ]
        return try page("events", title: "Events log", session: session, request: request, values: [
            "events": events, "total": String(total), "next": Self.shown(next), "filters": filters,
            "eventTypes": WebhookEventType.known.sorted().map { ["name": $0, "checked": $0 == chosenType] },
        ])
    }

    func eventPage(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let session = try await requireSession(request)
        let merchantId = try merchant(of: session)
        let eventId = try context.pathParameter("event_id")
        let base = "/events/\(Self.escape(merchantId))/\(Self.escape(eventId))"
        async let deliveryAnswer = api.get(base, key: session.apiKey, context: context)
        async let attemptsAnswer = api.get(base + "/attempts", key: session.apiKey, context: context)
        let (delivery, attempts) = try await (deliveryAnswer, attemptsAnswer)
        try check(delivery, what: "Event")
        try check(attempts, what: "Event")
        var deliveryValues = Self.strings(delivery.json ?? .null, ["event_id", "event_type", "object_id", "delivery_status", "status_reason", "next_attempt_at"])
        deliveryValues["webhook_endpoint_id"] = delivery.json?["webhook_endpoint_id"]?.stringValue ?? "(account URL)"
        deliveryValues["status_reason"] = Self.shown(delivery.json?["status_reason"]?.stringValue)
        deliveryValues["trace_id"] = Self.shown(delivery.json?["trace_id"]?.stringValue)
        deliveryValues["attempt_count"] = delivery.json?["attempt_count"]?.numberValue.map { String(Int($0)) } ?? ""
        if deliveryValues["next_attempt_at"] as? String == "" { deliveryValues["next_attempt_at"] = "none" }
        let attemptValues = (attempts.json?.arrayValue ?? []).map { attempt -> [String: Any] in
            let succeeded = attempt["is_delivery_successful"] == .bool(true)
            let status = attempt["response"]?["status_code"]?.numberValue.map { String(Int($0)) }
            return [
                "delivery_attempt": attempt["delivery_attempt"]?.stringValue ?? "",
                "created": attempt["created"]?.stringValue ?? "",
                "outcome": succeeded ? "success" : "failure",
                "outcomeText": (status.map { "HTTP " + $0 } ?? "no answer") + (succeeded ? " · delivered" : " · failed"),
                "latency_ms": Self.shown(attempt["response"]?["latency_ms"]?.numberValue.map { String(Int($0)) }),
                "error_message": Self.shown(attempt["response"]?["error_message"]?.stringValue),
                "request": ["headers": Self.headers(attempt["request"]?["headers"]), "body": Self.pretty(attempt["request"]?["body"]?.stringValue)],
                "response": ["headers": Self.headers(attempt["response"]?["headers"]), "body": Self.pretty(attempt["response"]?["body"]?.stringValue)],
            ]
        }
        return try page("event", title: "Delivery \(eventId)", session: session, request: request, values: ["delivery": deliveryValues, "attempts": attemptValues])
    }

    // MARK: Payments, refunds, disputes, recovery

    func paymentsPage(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let session = try await requireSession(request)
        let merchantId = try merchant(of: session)
        var pairs = [("limit", "50")] + (session.isOperator ? [("merchant_id", merchantId)] : [])
        if let after = request.uri.queryParameters["starting_after"], !after.isEmpty { pairs.append(("starting_after", String(after))) }
        let answer = try await api.get("/payments/list?" + Self.queryString(pairs), key: session.apiKey, context: context)
        try check(answer, what: "Payment", refusalsAsPages: true)
        let payments = (answer.json?["data"]?.arrayValue ?? []).map { Self.strings($0, ["payment_id", "status", "currency", "connector", "error_code", "created"]).merging(["amount": Self.number($0["amount"])]) { $1 } }
        let next = payments.count == 50 ? payments.last?["payment_id"] as? String : nil
        return try page("payments", title: "Payments", session: session, request: request, values: ["payments": payments, "next": Self.shown(next)])
    }

    func paymentPage(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let session = try await requireSession(request)
        let merchantId = try merchant(of: session)
        let paymentId = try context.pathParameter("payment_id")
        let answer = try await api.get("/payments/\(Self.escape(paymentId))", key: session.apiKey, context: context)
        try check(answer, what: "Payment")
        var filter: [String: JSONValue] = ["payment_id": .string(paymentId), "limit": .number(100)]
        if session.isOperator { filter["merchant_id"] = .string(merchantId) }
        let refunds = try await api.post("/refunds/list", key: session.apiKey, body: .object(filter), context: context)
        try check(refunds, what: "Payment")
        // The payment's trace is the one its events carry (tracing on): the gateway request's.
        let events = try await api.get("/events/\(Self.escape(merchantId))?" + Self.queryString([("object_id", paymentId), ("limit", "1")]), key: session.apiKey, context: context)
        let traceId = events.json?["events"]?.arrayValue?.first?["trace_id"]?.stringValue
        return try page("payment", title: "Payment \(paymentId)", session: session, request: request, values: [
            "paymentId": paymentId, "fields": Self.fields(answer.json ?? .null), "traceId": Self.shown(traceId),
            "refunds": (refunds.json?["data"]?.arrayValue ?? []).map(Self.refundValues),
        ])
    }

    static func refundValues(_ refund: JSONValue) -> [String: Any] {
        strings(refund, ["refund_id", "payment_id", "status", "currency", "error_code", "created"]).merging(["amount": number(refund["amount"])]) { $1 }
    }

    func refundsPage(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let session = try await requireSession(request)
        let merchantId = try merchant(of: session)
        var filter: [String: JSONValue] = ["limit": .number(100)]
        if session.isOperator { filter["merchant_id"] = .string(merchantId) }
        let answer = try await api.post("/refunds/list", key: session.apiKey, body: .object(filter), context: context)
        try check(answer, what: "Refund", refusalsAsPages: true)
        return try page("refunds", title: "Refunds", session: session, request: request, values: ["refunds": (answer.json?["data"]?.arrayValue ?? []).map(Self.refundValues)])
    }

    func disputesPage(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let session = try await requireSession(request)
        let merchantId = try merchant(of: session)
        let query = session.isOperator ? "?merchant_id=" + Self.escape(merchantId) : ""
        let answer = try await api.get("/disputes/list" + query, key: session.apiKey, context: context)
        try check(answer, what: "Dispute", refusalsAsPages: true)
        let disputes = (answer.json?.arrayValue ?? []).map {
            Self.strings($0, ["dispute_id", "payment_id", "dispute_stage", "dispute_status", "amount", "currency", "connector_reason", "created_at"])
        }
        return try page("disputes", title: "Disputes", session: session, request: request, values: ["disputes": disputes])
    }

    func disputePage(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let session = try await requireSession(request)
        _ = try merchant(of: session)
        let disputeId = try context.pathParameter("dispute_id")
        let answer = try await api.get("/disputes/\(Self.escape(disputeId))", key: session.apiKey, context: context)
        try check(answer, what: "Dispute")
        return try page("dispute", title: "Dispute \(disputeId)", session: session, request: request, values: [
            "disputeId": disputeId, "fields": Self.fields(answer.json ?? .null),
            "acceptable": answer.json?["dispute_status"]?.stringValue == "dispute_opened",
        ])
    }

    func recoveryPage(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let session = try await requireSession(request)
        let merchantId = try merchant(of: session)
        let paymentId = try context.pathParameter("payment_id")
        let answer = try await api.send(.get, "/v2/payments/\(Self.escape(paymentId))/recovery", key: session.apiKey, body: nil, headers: ["x-merchant-id": merchantId], context: context)
        try check(answer, what: "Recovery job")
        var job = answer.json ?? .null
        let attempts = (job["attempts"]?.arrayValue ?? []).map { attempt -> [String: Any] in
            [
                "number": Self.number(attempt["attempt_number"]), "at": attempt["attempted_at"]?.stringValue ?? "",
                "status": attempt["status"]?.stringValue ?? "",
                "decline": [attempt["decline_code"]?.stringValue, attempt["raw_decline_code"]?.stringValue].compactMap { $0 }.joined(separator: " / "),
                "advice": attempt["advice_code"]?.stringValue ?? "", "payment": attempt["payment_id"]?.stringValue ?? "",
            ]
        }
        if case .object(var object) = job { object["attempts"] = nil; job = .object(object) }
        return try page("recovery", title: "Recovery job \(paymentId)", session: session, request: request, values: [
            "paymentId": paymentId, "job": ["fields": Self.fields(job), "attempts": attempts] as [String: Any],
        ])
    }

    // MARK: Operator

    func operatorPage(_ request: Request, _ context: PaywireRequestContext) async throws -> Response {
        let session = try await requireSession(request)
        guard session.isOperator else { throw ConsolePageError(status: .forbidden, text: "This page is the operator's: sign in with the admin key.") }
        let readiness = await withTaskGroup(of: (Int, [String: String]).self) { group in
            for (index, service) in services.enumerated() {
                group.addTask { (index, await Self.readiness(name: service.name, url: service.url)) }
            }
            var found: [(Int, [String: String])] = []
            for await entry in group { found.append(entry) }
            return found.sorted { $0.0 < $1.0 }.map(\.1)
        }
        var values: [String: Any] = ["services": readiness, "merchantId": session.merchantId ?? ""]
        do {
            let records = try await DeadLetterArchive.read(kafka: kafka, topic: deadLetterTopic, logger: logger, timeout: .seconds(10))
            values["deadLetters"] = records.suffix(100).reversed().map { record -> [String: Any] in
                ["id": record.id, "at": PaywireJSON.format(record.letter.deadLetteredAt), "topic": record.letter.originalTopic,
                 "consumer": record.letter.consumerGroup, "reason": record.letter.reason]
            }
        } catch {
            values["deadLettersProblem"] = "The dead-letter topic could not be read now."
        }
        return try page("operator", title: "Operator", session: session, request: request, values: values)
    }

    static func readiness(name: String, url: String) async -> [String: String] {
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url + "/ready"), timeout: .seconds(3))
            let body = try await response.body.collect(upTo: 1 << 16)
            let json = try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(buffer: body))
            let problems = json?["problems"].map(jsonText) ?? ""
            return ["name": name, "state": response.status == .ok ? "ready" : "not_ready", "problems": problems == "{}" ? "" : problems]
        } catch {
            return ["name": name, "state": "not_ready", "problems": "not reachable"]
        }
    }

    // MARK: Rendering

    /// A page in the layout, with what every signed-in page shows.
    func page(_ template: String, title: String, session: ConsoleSession, request: Request, values: [String: Any], status: HTTPResponse.Status = .ok) throws -> Response {
        var values = values
        values["title"] = title
        values["signedIn"] = true
        values["csrf"] = session.csrfToken
        values["operator"] = session.isOperator
        values["merchant"] = session.merchantId != nil
        values["who"] = session.isOperator ? "operator" + (session.merchantId.map { " · " + $0 } ?? "") : session.merchantId ?? ""
        if values["notice"] == nil, let code = request.uri.queryParameters["notice"].map(String.init) {
            values["notice"] = Self.shown(Self.notices[code].map { $0.replacingOccurrences(of: "{count}", with: request.uri.queryParameters["count"].map(String.init) ?? "0") })
        }
        return try render(template, status: status, values: values)
    }

    func render(_ template: String, status: HTTPResponse.Status, values: [String: Any]) throws -> Response {
        guard let html = ConsoleTemplates.library.render(values, withTemplate: template) else { throw ConsolePageError(status: .internalServerError, text: "The page could not be drawn.") }
        return Self.html(html, status: status)
    }

    static func html(_ html: String, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// Notices named in a redirect's query: fixed texts, so nothing a URL carries is shown.
    static let notices: [String: String] = [
        "endpoint-saved": "The endpoint's events are saved.", "endpoint-disabled": "The endpoint is disabled: it gets no deliveries until enabled.",
        "endpoint-enabled": "The endpoint is enabled.", "endpoint-deleted": "The endpoint is deleted (kept as deprecated for its history).",
        "recovered": "{count} failed deliveries are scheduled again.", "retry-delivered": "Retried: the endpoint took it.",
        "retry-failed": "Retried: the endpoint did not take it (see the newest attempt).", "retry-pending": "Retried: the endpoint has not answered yet; the attempt goes on.",
        "dispute-accepted": "The dispute is accepted; the processor has been told.",
    ]

    /// A failed API answer as the page the browser should see: the session's key no longer
    /// valid ends the session; what is not there is 404; the API's refusal of the input is its
    /// message (a page of its own, or left to the caller when `refusalsAsPages` is false).
    func check(_ answer: ConsoleAPIClient.Answer, what: String, refusalsAsPages: Bool = true) throws {
        switch answer.status {
        case 200..<300: return
        case 401: throw ConsoleRedirect(location: "/console/sign-in")
        case 404: throw ConsolePageError(status: .notFound, text: "\(what) not found.")
        case 400..<500 where !refusalsAsPages: return
        default: throw ConsolePageError(status: .init(code: answer.status), text: answer.errorMessage)
        }
    }

    // MARK: Values

    static func escape(_ segment: String) -> String { StrictPercentEncoding.encode(segment) }

    static func queryString(_ pairs: [(String, String)]) -> String {
        pairs.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
    }

    static func eventChoices(checked: Set<String>) -> [[String: Any]] {
        WebhookEventType.known.sorted().map { ["name": $0, "checked": checked.contains($0)] }
    }

    static func strings(_ json: JSONValue, _ names: [String]) -> [String: Any] {
        var values: [String: Any] = [:]
        for name in names { values[name] = json[name].map(display) ?? "" }
        return values
    }

    /// A value a template shows only when there is one: Mustache treats an empty string as
    /// something to show, and an optional boxed in `Any` prints "nil"; `false` shows nothing.
    static func shown(_ value: String?) -> Any {
        guard let value, !value.isEmpty else { return false }
        return value
    }

    static func jsonText(_ value: JSONValue) -> String { (try? PaywireJSON.text(value)) ?? "" }

    static func number(_ value: JSONValue?) -> String {
        guard let number = value?.numberValue else { return value?.stringValue ?? "" }
        return String(Int64(number))
    }

    static func display(_ value: JSONValue) -> String {
        switch value {
        case .null: return ""
        case .string(let text): return text
        case .bool(let flag): return flag ? "yes" : "no"
        case .number(let number): return number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        default: return Self.jsonText(value)
        }
    }

    /// Every field of an object, sorted, objects and arrays pretty-printed; `client_secret` masked.
    static func fields(_ json: JSONValue) -> [[String: Any]] {
        guard case .object(let object) = json else { return [] }
        return object.keys.sorted().compactMap { name in
            let value = object[name]!
            if value == .null { return nil }
            if name == "client_secret" { return ["name": name, "value": "••••", "pre": false] }
            switch value {
            case .object, .array: return ["name": name, "value": pretty(Self.jsonText(value)), "pre": true]
            default: return ["name": name, "value": display(value), "pre": false]
            }
        }
    }

    /// Header pairs for a page, with values of headers that carry credentials masked.
    static func headers(_ pairs: JSONValue?) -> [[String: String]] {
        (pairs?.arrayValue ?? []).compactMap { pair in
            guard let items = pair.arrayValue, items.count == 2, let name = items[0].stringValue, let value = items[1].stringValue else { return nil }
            return ["name": name, "value": ConsoleMasking.mask(header: name, value: value)]
        }
    }

    /// A body as sent, pretty-printed when it is JSON.
    static func pretty(_ text: String?) -> String {
        guard let text, !text.isEmpty else { return "" }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return text }
        return String(decoding: data, as: UTF8.self)
    }

    /// A time as a `datetime-local` input shows it (UTC, to the second).
    static func localInput(_ date: Date) -> String {
        String(PaywireJSON.format(date).prefix(19))
    }

    static func parseLocalInput(_ text: String, field: String) throws -> Date {
        let full = text.count == 16 ? text + ":00" : text
        guard let date = PaywireJSON.parse(full.hasSuffix("Z") ? full : full + "Z") else {
            throw APIError.invalid(field, "must be a time as YYYY-MM-DDTHH:MM[:SS] (UTC)")
        }
        return date
    }

    /// Compares two secrets in time that does not depend on where they differ.
    static func sameSecret(_ given: String?, _ expected: String) -> Bool {
        guard let given else { return false }
        let (a, b) = (Array(given.utf8), Array(expected.utf8))
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

extension JSONValue {
    /// The elements of an array, nil for anything else.
    var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    var numberValue: Double? {
        if case .number(let number) = self { return number }
        return nil
    }
}
