import Foundation
import Hummingbird
import Logging
import PaywireModels
import PaywireRuntime

/// The dispatcher's internal HTTP API: the events log and endpoint health. Only the gateway calls
/// it (each request signed by `InternalAPISigner`), after it has authenticated the merchant; the
/// merchant id in the path scopes every query, so one merchant never sees another's deliveries.
struct EventsAPI: Sendable {
    let log: EventLog
    let health: EndpointHealth

    func addRoutes(to router: Router<PaywireRequestContext>, signer: InternalAPISigner) {
        let group = router.group("/internal").add(middleware: InternalAPIAuthenticationMiddleware(signer: signer))
        group.get("/events/:merchant_id") { request, context in
            let merchantId = try context.pathParameter("merchant_id")
            return JSONResponse(try await log.list(merchantId: merchantId, filter: try Self.filter(request.uri.queryParameters)))
        }
        group.get("/events/:merchant_id/:event_id") { _, context in
            JSONResponse(try await log.event(merchantId: try context.pathParameter("merchant_id"), id: try context.pathParameter("event_id")))
        }
        group.get("/events/:merchant_id/:event_id/attempts") { _, context in
            JSONResponse(try await log.attempts(merchantId: try context.pathParameter("merchant_id"), id: try context.pathParameter("event_id")))
        }
        group.post("/events/:merchant_id/:event_id/retry") { request, context in
            let merchantId = try context.pathParameter("merchant_id")
            try await caughtUp(merchantId: merchantId, request)
            let answer = try await log.retry(merchantId: merchantId, id: try context.pathParameter("event_id"), answerWithin: log.worker.settings.manualRetryAnswerWithin)
            return JSONResponse(answer.body, status: answer.finished ? .ok : .accepted)
        }
        group.post("/events/:merchant_id/recover") { request, context in
            let merchantId = try context.pathParameter("merchant_id")
            try await caughtUp(merchantId: merchantId, request)
            let body = try await RequestObject.read(from: request, context: context)
            let (since, until) = try Self.recoverWindow(body)
            let endpointId = try body.string("webhook_endpoint_id", maxLength: 64)
            let profileId = try body.string("profile_id", maxLength: 64)
            guard endpointId != nil || profileId != nil else {
                throw APIError.invalid("webhook_endpoint_id", "name the endpoint (webhook_endpoint_id) or the profile (profile_id) whose failed deliveries to recover", code: "IR_05")
            }
            let scheduled = try await log.recover(merchantId: merchantId, since: since, until: until, endpointId: endpointId, profileId: profileId)
            let answer: [String: JSONValue] = [
                "scheduled": .number(Double(scheduled)), "since": .string(PaywireJSON.format(since)),
                "until": until.map { JSONValue.string(PaywireJSON.format($0)) } ?? .null,
            ]
            return JSONResponse(.object(answer))
        }
        group.get("/endpoints/:merchant_id/:webhook_endpoint_id/health") { _, context in
            JSONResponse(try await health.view(merchantId: try context.pathParameter("merchant_id"), endpointId: try context.pathParameter("webhook_endpoint_id")))
        }
    }

    /// Waits until this service's configuration copy has the version the gateway was at when it
    /// passed the command on (`configuration_version`), and drops what the cache held before, so
    /// the retry or recover acts on the endpoint as the merchant left it.
    func caughtUp(merchantId: String, _ request: Request) async throws {
        guard let text = request.uri.queryParameters["configuration_version"] else { return }
        guard let version = Int64(String(text)), version >= 0 else { throw APIError.invalid("configuration_version", "must be a whole number") }
        do {
            try await log.worker.configuration.waitFor(merchantId: merchantId, version: version)
        } catch is ConfigurationCopy.NotYet {
            throw APIError.unavailable("The webhook dispatcher has not received the merchant's latest configuration yet; retry shortly")
        }
        try await log.worker.configuration.revalidate([merchantId])
    }

    static func recoverWindow(_ body: RequestObject, now: Date = Date()) throws -> (Date, Date?) {
        let sinceText = try body.requiredString("since", maxLength: 64)
        guard let since = RFC3339.parse(sinceText) else { throw APIError.invalid("since", "must be an RFC 3339 date-time, e.g. 2026-11-20T00:00:00Z") }
        guard since >= now.addingTimeInterval(-Double(EventLog.recoverWindowDays) * 86400) else {
            throw APIError.invalid("since", "must be within the last \(EventLog.recoverWindowDays) days")
        }
        guard since <= now else { throw APIError.invalid("since", "must not be in the future") }
        var until: Date?
        if let text = try body.string("until", maxLength: 64) {
            guard let value = RFC3339.parse(text) else { throw APIError.invalid("until", "must be an RFC 3339 date-time") }
            guard value >= since else { throw APIError.invalid("until", "must not be before since") }
            until = value
        }
        return (since, until)
    }

    /// The list filters, each checked and refused with 400 naming it.
    static func filter(_ query: Parameters) throws -> EventLog.Filter {
        var filter = EventLog.Filter()
        func single(_ name: String) throws -> String? {
            let values = query.getAll(name)
            guard values.count <= 1 else { throw APIError.invalid(name, "may be given once") }
            guard let first = values.first else { return nil }
            let value = String(first)
            guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw APIError.invalid(name, "must not contain control characters")
            }
            return value
        }
        func date(_ name: String) throws -> Date? {
            guard let text = try single(name) else { return nil }
            guard let value = RFC3339.parse(text) else { throw APIError.invalid(name, "must be an RFC 3339 date-time, e.g. 2026-11-20T00:00:00Z") }
            return value
        }
        func id(_ name: String) throws -> String? {
            guard let text = try single(name) else { return nil }
            guard (1...64).contains(text.unicodeScalars.count) else { throw APIError.invalid(name, "must be 1 to 64 characters") }
            return text
        }
        func list(_ name: String, allowed: Set<String>) throws -> [String] {
            // Repeated (`?event_types=a&event_types=b`) or comma-separated.
            let values = query.getAll(name).flatMap { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            for value in values where !allowed.contains(value) {
                throw APIError.invalid(name, "has an unknown value: \(String(value.unicodeScalars.prefix(64).filter { $0.properties.generalCategory != .control }))")
            }
            return values
        }
        func integer(_ name: String, range: ClosedRange<Int>) throws -> Int? {
            guard let text = try single(name) else { return nil }
            guard let value = Int(text), range.contains(value) else { throw APIError.invalid(name, "must be a whole number from \(range.lowerBound) to \(range.upperBound)") }
            return value
        }
        filter.createdAfter = try date("created_after")
        filter.createdBefore = try date("created_before")
        filter.objectId = try id("object_id")
        filter.profileId = try id("profile_id")
        filter.endpointId = try id("webhook_endpoint_id")
        filter.eventTypes = try list("event_types", allowed: WebhookEventType.known)
        filter.eventClasses = try list("event_classes", allowed: EventLog.eventClasses)
        if let text = try single("is_delivered") {
            guard text == "true" || text == "false" else { throw APIError.invalid("is_delivered", "must be true or false") }
            filter.isDelivered = text == "true"
        }
        filter.limit = try integer("limit", range: 1...100) ?? 20
        filter.offset = try integer("offset", range: 0...1_000_000) ?? 0
        return filter
    }
}
