import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A merchant's webhook endpoint on loopback: records every request and answers with the status
/// the test chooses.
public final class WebhookReceiver: Sendable {
    public struct Received: Sendable {
        public var path: String
        public var headers: [String: String]
        public var body: String
        public var at: ContinuousClock.Instant = .now
    }

    private let received = NIOLockedValueBox<[Received]>([])
    private let status = NIOLockedValueBox<HTTPResponse.Status>(.ok)
    private let answer = NIOLockedValueBox<[UInt8]>([])
    private let script = NIOLockedValueBox<[HTTPResponse.Status]>([])
    private let answerHeaders = NIOLockedValueBox<[String: String]>([:])
    private let delay = NIOLockedValueBox<Duration>(.zero)
    /// While holding: the requests waiting for `release()` (nil: not holding).
    private let held = NIOLockedValueBox<[CheckedContinuation<Void, Never>]?>(nil)
    private let failing = NIOLockedValueBox<(needle: String, remaining: Int)?>(nil)
    private let concurrency = NIOLockedValueBox<(now: Int, most: Int)>((0, 0))
    private let pathDelays = NIOLockedValueBox<[String: Duration]>([:])
    private let pathConcurrency = NIOLockedValueBox<[String: (now: Int, most: Int)]>([:])

    /// The most requests this receiver was handling at one moment.
    public var mostAtOnce: Int { concurrency.withLockedValue { $0.most } }
    /// The most requests to `path` this receiver was handling at one moment.
    public func mostAtOnce(path: String) -> Int { pathConcurrency.withLockedValue { $0[path]?.most ?? 0 } }
    /// Requests to `path` being handled now.
    public func openNow(path: String) -> Int { pathConcurrency.withLockedValue { $0[path]?.now ?? 0 } }
    /// Answers to `path` wait this long first (one slow merchant on a host shared with others).
    public func respond(after wait: Duration, onPath path: String) { pathDelays.withLockedValue { $0[path] = wait } }
    private let port = NIOLockedValueBox<Int?>(nil)
    private let task = NIOLockedValueBox<Task<Void, any Error>?>(nil)

    public init() {}

    public var requests: [Received] { received.withLockedValue { $0 } }
    public func respond(with status: HTTPResponse.Status) { self.status.withLockedValue { $0 = status } }
    /// The body every answer carries from now on (any bytes, NUL included).
    public func respond(body: [UInt8]) { answer.withLockedValue { $0 = body } }
    /// The next answers, in order, before falling back to `respond(with:)`'s status.
    public func respond(inOrder statuses: [HTTPResponse.Status]) { script.withLockedValue { $0 = statuses } }
    public func respond(headers: [String: String]) { answerHeaders.withLockedValue { $0 = headers } }
    /// The next `times` requests whose body contains `needle` are answered 500.
    public func fail(_ times: Int, whenBodyContains needle: String) { failing.withLockedValue { $0 = (needle, times) } }
    /// Every answer waits this long first (a slow merchant).
    public func respond(after wait: Duration) { delay.withLockedValue { $0 = wait } }

    /// Every request, once recorded, waits unanswered until `release()` (however long a test
    /// takes to look at what the sender did meanwhile).
    public func hold() { held.withLockedValue { if $0 == nil { $0 = [] } } }
    public func release() {
        let waiting = held.withLockedValue { held -> [CheckedContinuation<Void, Never>] in
            defer { held = nil }
            return held ?? []
        }
        for request in waiting { request.resume() }
    }

    /// Header names are lowercased.
    /// Starts listening on an ephemeral loopback port and returns the base URL. `host` is
    /// 127.0.0.1 or ::1 (an IPv6 receiver).
    public func start(host: String = "127.0.0.1") async throws -> String {
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { [received, status, answer, script, answerHeaders, delay, held, concurrency, failing, pathDelays, pathConcurrency] request, _ in
            let path = request.uri.path
            concurrency.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now) }
            pathConcurrency.withLockedValue { all in
                var entry = all[path] ?? (0, 0)
                entry.now += 1
                entry.most = max(entry.most, entry.now)
                all[path] = entry
            }
            defer {
                concurrency.withLockedValue { $0.now -= 1 }
                pathConcurrency.withLockedValue { $0[path]?.now -= 1 }
            }
            let body = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            received.withLockedValue { $0.append(Received(path: request.uri.path, headers: headers, body: String(buffer: body))) }
            let wait = pathDelays.withLockedValue { $0[path] } ?? delay.withLockedValue { $0 }
            if wait > .zero { try await Task.sleep(for: wait) }
            // Each waiting request is resumed once, by `release()` (or at once when not holding).
            await withCheckedContinuation { (request: CheckedContinuation<Void, Never>) in
                let waits = held.withLockedValue { held -> Bool in
                    guard held != nil else { return false }
                    held!.append(request)
                    return true
                }
                if !waits { request.resume() }
            }
            let bytes = answer.withLockedValue { $0 }
            let text = String(buffer: body)
            let failed = failing.withLockedValue { rule -> Bool in
                guard let current = rule, current.remaining > 0, text.contains(current.needle) else { return false }
                rule = (current.needle, current.remaining - 1)
                return true
            }
            let scripted = failed ? .internalServerError : script.withLockedValue { queue in queue.isEmpty ? nil : queue.removeFirst() }
            var fields = HTTPFields()
            for (name, value) in answerHeaders.withLockedValue({ $0 }) { fields[.init(name)!] = value }
            return Response(status: scripted ?? status.withLockedValue { $0 }, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        // Any path, the root included: merchants configure bare hosts too.
        router.post("/", use: handler)
        router.post("/**", use: handler)
        let port = self.port
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: 0)),
            onServerRunning: { channel in port.withLockedValue { $0 = channel.localAddress?.port } },
            logger: TestEnvironment.logger("receiver", level: .critical)
        )
        task.withLockedValue { $0 = Task { try await app.runService(gracefulShutdownSignals: []) } }
        // Bound by a deadline, not a count of tries: a loaded machine only makes it slower.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let value = port.withLockedValue({ $0 }) { return host.contains(":") ? "http://[\(host)]:\(value)" : "http://\(host):\(value)" }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw MissingTestService(description: "webhook receiver did not start")
    }

    public func stop() {
        release()
        task.withLockedValue { $0?.cancel() }
    }
}
