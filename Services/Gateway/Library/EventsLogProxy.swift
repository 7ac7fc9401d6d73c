import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import PaywireModels
import PaywireRuntime
import PostgresNIO

/// The events log (`/events/{merchant_id}…`) on the public host. The dispatcher owns deliveries
/// and attempts and answers these from its own schema; the gateway admits the caller (the admin
/// key or the merchant's own key; another merchant's id answers 404) and passes the request on, signed, to the dispatcher's internal API. The dispatcher's answer comes back as is.
struct EventsLogProxy: Sendable {
    static let environmentKeys = ["PAYWIRE_WEBHOOK_DISPATCHER_URL"]

    let dispatcher: InternalAPIClient
    /// The gateway's own database, for the merchant's configuration version.
    let postgres: PostgresClient
    let logger: Logger

    /// The query parameter that carries the merchant's configuration version to the dispatcher.
    static let configurationVersionParameter = "configuration_version"

    func addRoutes(to router: some RouterMethods<PaywireRequestContext>) {
        router.get("/events/:merchant_id") { request, context in
            try await forward(request, context, suffix: "")
        }
        router.get("/events/:merchant_id/:event_id") { request, context in
            try await forward(request, context, suffix: "/" + Self.escape(try context.pathParameter("event_id")))
        }
        router.get("/events/:merchant_id/:event_id/attempts") { request, context in
            try await forward(request, context, suffix: "/" + Self.escape(try context.pathParameter("event_id")) + "/attempts")
        }
        router.post("/events/:merchant_id/:event_id/retry") { request, context in
            try await forward(request, context, suffix: "/" + Self.escape(try context.pathParameter("event_id")) + "/retry")
        }
        router.post("/events/:merchant_id/recover") { request, context in
            try await forward(request, context, suffix: "/recover")
        }
    }

    func forward(_ request: Request, _ context: PaywireRequestContext, suffix: String) async throws -> Response {
        // The route's group has checked the caller may act for this merchant.
        let merchantId = try context.pathParameter("merchant_id")
        var path = "/internal/events/" + Self.escape(merchantId) + suffix
        // The query is passed on re-encoded strictly (unreserved characters only), so the bytes
        // signed here are the bytes the dispatcher receives, whatever encoding the client used.
        var query = request.uri.queryParameters
            .filter { String($0.key) != Self.configurationVersionParameter }
            .map { Self.escape(String($0.key)) + "=" + Self.escape(String($0.value)) }
        // A manual retry or recover acts on the endpoint as the merchant configured it last (an
        // endpoint reactivated a moment ago included): the dispatcher waits until its copy of the
        // configuration has this version, as it does for payment events.
        if request.method == .post {
            let version = try await ConfigurationPublisher.currentVersion(merchantId, postgres: postgres, logger: logger)
            query.append(Self.configurationVersionParameter + "=" + String(version))
        }
        if !query.isEmpty { path += "?" + query.joined(separator: "&") }
        let body = request.method == .post ? try await RequestObject.body(of: request, context: context) : ByteBuffer()
        return try await send(method: request.method == .post ? .POST : .GET, path: path, body: body)
    }

    /// A signed call to the dispatcher; its answer (status and JSON body) is passed back.
    func send(method: HTTPMethod, path: String, body: ByteBuffer) async throws -> Response {
        do {
            // A manual retry waits for the merchant's endpoint: up to the dispatcher's request
            // timeout (at most 300 s) plus a margin.
            let answer = try await dispatcher.send(method: method, path: path, body: body, timeout: .seconds(330))
            return try JSONResponse(json: answer.body, status: .init(code: answer.status)).response()
        } catch {
            logger.warning("events log call to the webhook dispatcher failed", metadata: ["error": .string(String(describing: error))])
            throw APIError.unavailable("The events log is not reachable now; retry later")
        }
    }

    /// The dispatcher's view of one endpoint (`health`), or nil when it cannot be had quickly:
    /// the endpoint's own settings are answered regardless.
    func endpointHealth(merchantId: String, endpointId: String) async -> JSONValue? {
        let path = "/internal/endpoints/\(Self.escape(merchantId))/\(Self.escape(endpointId))/health"
        do {
            let answer = try await dispatcher.send(method: .GET, path: path, timeout: .seconds(2), maxBytes: 1 << 16)
            guard answer.status == 200 else { return nil }
            return try PaywireJSON.decoder.decode(JSONValue.self, from: Data(buffer: answer.body))
        } catch {
            logger.debug("endpoint health not available", metadata: ["error": .string(String(describing: error))])
            return nil
        }
    }

    static func escape(_ segment: String) -> String { StrictPercentEncoding.encode(segment) }
}
