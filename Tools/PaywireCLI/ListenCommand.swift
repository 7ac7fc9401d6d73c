import ArgumentParser
import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import PaywireModels
import PaywireRuntime
import ServiceLifecycle

/// `paywire listen`: a temporary webhook endpoint on this machine. It registers an endpoint that
/// points at itself, checks both signatures on every delivery, prints one line per event, passes
/// the delivery on to a local app if asked, and deprecates the endpoint when stopped (Ctrl-C).
struct Listen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive a profile's webhooks here: verify, print, optionally forward; the endpoint is removed on exit."
    )

    @Option(help: "The gateway's base URL.") var url = ProcessInfo.processInfo.environment["PAYWIRE_URL"] ?? "http://127.0.0.1:8080"
    @Option(name: .customLong("api-key"), help: "The merchant's API key (or the admin key); default $PAYWIRE_API_KEY.") var apiKey: String?
    @Option(help: "The merchant id; default $PAYWIRE_MERCHANT_ID.") var merchant: String?
    @Option(help: "The business profile whose events to receive; default: the merchant's default profile.") var profile: String?
    @Option(help: "Comma-separated event types (e.g. payment_succeeded,refund_succeeded).") var events: String
    @Option(name: .customLong("forward-to"), help: "Pass each delivery on to this URL (headers and body unchanged).") var forwardTo: String?
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free one).") var port = 0
    @Option(name: .customLong("public-url"), help: "The URL the dispatcher should call, when it cannot reach this machine's address directly (a tunnel).") var publicURL: String?

    /// Arguments are checked before anything is registered, each refusal one line naming its option.
    func validate() throws {
        guard (0...65535).contains(port) else { throw CommandLineError("--port must be 0 (any free port) to 65535, not \(port)") }
        for (option, value) in [("--url", url as String?), ("--forward-to", forwardTo), ("--public-url", publicURL)] {
            guard let value else { continue }
            do {
                _ = try HTTPTargetURL.parse(value)
            } catch {
                throw CommandLineError("\(option) \(error.description): \(value)")
            }
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        ParentWatchdog.startIfRequested(environment: environment)
        guard let apiKey = apiKey ?? environment["PAYWIRE_API_KEY"], !apiKey.isEmpty else { throw CommandLineError("--api-key (or PAYWIRE_API_KEY) is required") }
        guard let merchant = merchant ?? environment["PAYWIRE_MERCHANT_ID"], !merchant.isEmpty else { throw CommandLineError("--merchant (or PAYWIRE_MERCHANT_ID) is required") }
        let eventTypes = events.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !eventTypes.isEmpty else { throw CommandLineError("--events names at least one event type") }
        for type in eventTypes where !WebhookEventType.known.contains(type) { throw CommandLineError("unknown event type \(type)") }

        var logger = Logger(label: "paywire.listen")
        logger.logLevel = .error
        let gateway = GatewayClient(baseURL: url.hasSuffix("/") ? String(url.dropLast()) : url, apiKey: apiKey)
        let profileId: String
        if let profile { profileId = profile } else {
            guard let id = try await gateway.json(.GET, "/accounts/\(merchant)")["default_profile"]?.stringValue else {
                throw CommandLineError("merchant \(merchant) has no default profile; pass --profile")
            }
            profileId = id
        }
        let hashKey = try await gateway.json(.GET, "/account/\(merchant)/business_profile/\(profileId)")["payment_response_hash_key"]?.stringValue

        let verifier = DeliveryVerifier(secret: "", hashKey: hashKey)
        let state = ListenState(verifier: verifier)
        let router = Router()
        let forwardTo = forwardTo
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let body = try await request.body.collect(upTo: 8 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            let bodyText = String(buffer: body)
            say(state.verifier().describe(headers: headers, body: bodyText))
            guard let forwardTo else { return Response(status: .ok) }
            var forward = HTTPClientRequest(url: forwardTo)
            forward.method = .POST
            for field in request.headers { forward.headers.add(name: field.name.canonicalName, value: field.value) }
            forward.body = .bytes(body)
            do {
                let answer = try await HTTPClient.shared.execute(forward, timeout: .seconds(30))
                say("  → forwarded to \(forwardTo): \(answer.status.code)")
                return Response(status: .init(code: Int(answer.status.code)))
            } catch {
                say("  → forwarding to \(forwardTo) failed: \(error)")
                return Response(status: .badGateway)
            }
        }
        // The root and any path: the endpoint is registered at the root.
        router.post("/", use: handler)
        router.post("/**", use: handler)
        let bound = BoundPort()
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)), onServerRunning: { channel in bound.set(channel.localAddress?.port) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigint, .sigterm], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let listeningPort = try await bound.wait()
            let reachable = host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host
            let target = publicURL ?? "http://\(reachable.contains(":") ? "[\(reachable)]" : reachable):\(listeningPort)/"
            let created = try await gateway.json(.POST, "/account/\(merchant)/business_profile/\(profileId)/webhooks",
                                                 body: .object(["webhook_url": .string(target), "events": .array(eventTypes.map(JSONValue.string))]))
            guard let endpointId = created["webhook_endpoint_id"]?.stringValue, let secret = created["signing_secret"]?.stringValue else {
                await group.triggerGracefulShutdown()
                throw CommandLineError("the gateway did not create the endpoint")
            }
            state.set(DeliveryVerifier(secret: secret, hashKey: hashKey))
            say("listening on \(target) as endpoint \(endpointId) for \(eventTypes.joined(separator: ", ")) (Ctrl-C to stop)")
            try await tasks.next()
            // Stopped: the endpoint is deprecated so nothing more is sent to an address nobody serves.
            _ = try? await gateway.json(.DELETE, "/account/\(merchant)/business_profile/\(profileId)/webhooks/\(endpointId)")
            say("endpoint \(endpointId) deprecated")
        }
    }
}

/// The command's view of the gateway: JSON in, JSON out, errors with the gateway's message.
struct GatewayClient: Sendable {
    let baseURL: String
    let apiKey: String

    func json(_ method: NIOHTTP1.HTTPMethod, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "api-key", value: apiKey)
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try PaywireJSON.encoder.encode(body)))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 4 << 20)
        let value = (try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(buffer: bytes))) ?? .null
        guard (200..<300).contains(response.status.code) else {
            throw CommandLineError("\(method.rawValue) \(path): \(response.status.code) \(value["error"]?["message"]?.stringValue ?? String(buffer: bytes))")
        }
        return value
    }
}

/// Checks a delivery's two signatures, independently of the dispatcher's code: Standard Webhooks
/// (`webhook-signature`, HMAC-SHA256 of `id.timestamp.body` with the `whsec_` secret, timestamp
/// within 5 minutes) and `X-Webhook-Signature-512` (HMAC-SHA512 of the body with the profile's
/// `payment_response_hash_key`).
struct DeliveryVerifier: Sendable {
    let secret: String
    let hashKey: String?
    static let tolerance: TimeInterval = 300

    func standardWebhooks(headers: [String: String], body: String, now: Date = Date()) -> String? {
        guard let id = headers["webhook-id"], let timestamp = headers["webhook-timestamp"], let signatures = headers["webhook-signature"] else {
            return "webhook-id, webhook-timestamp or webhook-signature missing"
        }
        guard let seconds = TimeInterval(timestamp), abs(now.timeIntervalSince1970 - seconds) <= Self.tolerance else { return "timestamp outside 5 minutes" }
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))) else { return "no signing secret" }
        let expected = Data(HMAC<SHA256>.authenticationCode(for: Data("\(id).\(timestamp).\(body)".utf8), using: SymmetricKey(data: key)))
        for entry in signatures.split(separator: " ") where entry.hasPrefix("v1,") {
            if let given = Data(base64Encoded: String(entry.dropFirst(3))), given == expected { return nil }
        }
        return "no matching v1 signature"
    }

    func signature512(headers: [String: String], body: String) -> String? {
        guard let hashKey else { return "profile has no payment_response_hash_key" }
        guard let given = headers["x-webhook-signature-512"] else { return "header missing" }
        let expected = HMAC<SHA512>.authenticationCode(for: Data(body.utf8), using: SymmetricKey(data: Data(hashKey.utf8))).map { String(format: "%02x", $0) }.joined()
        return given.lowercased() == expected ? nil : "does not match"
    }

    /// One line: when, type, id, and each signature verified or why not.
    func describe(headers: [String: String], body: String) -> String {
        let object = (try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(body.utf8))) ?? .null
        let type = object["event_type"]?.stringValue ?? "?"
        let id = headers["webhook-id"] ?? object["event_id"]?.stringValue ?? "?"
        let standard = standardWebhooks(headers: headers, body: body).map { "NOT verified (\($0))" } ?? "verified"
        let sha512 = signature512(headers: headers, body: body).map { "NOT verified (\($0))" } ?? "verified"
        return "\(PaywireJSON.format(Date()))  \(type)  \(id)  webhook-signature: \(standard)  X-Webhook-Signature-512: \(sha512)"
    }
}

/// The verifier once the endpoint (and so its secret) exists.
final class ListenState: Sendable {
    private let current: NIOLockedValueBox<DeliveryVerifier>
    init(verifier: DeliveryVerifier) { current = NIOLockedValueBox(verifier) }
    func set(_ verifier: DeliveryVerifier) { current.withLockedValue { $0 = verifier } }
    func verifier() -> DeliveryVerifier { current.withLockedValue { $0 } }
}

/// The port the listener got, once it has one.
final class BoundPort: Sendable {
    private let port = NIOLockedValueBox<Int?>(nil)
    func set(_ value: Int?) { port.withLockedValue { $0 = value } }
    func wait() async throws -> Int {
        for _ in 0..<500 {
            if let value = port.withLockedValue({ $0 }) { return value }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw CommandLineError("could not listen on the given address")
    }
}

/// One line to standard output, written at once (a pipe to another program sees it immediately).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
