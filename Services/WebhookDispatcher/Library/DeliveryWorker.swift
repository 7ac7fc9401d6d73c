import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO
import ServiceLifecycle

/// Sends due deliveries. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so any number of
/// dispatcher replicas share the work and a killed one's rows are picked up by the others.
public final class DeliveryWorker: Service, Sendable {
    let postgres: PostgresClient
    let configuration: ConfigurationRepository
    let logger: Logger
    let schedule: RetrySchedule
    let requestTimeout: Duration
    let batchSize: Int
    let delivered = Counter(label: "paywire_webhook_deliveries_total", dimensions: [("outcome", "delivered")])
    let failed = Counter(label: "paywire_webhook_deliveries_total", dimensions: [("outcome", "failed")])

    public init(postgres: PostgresClient, configuration: ConfigurationRepository, logger: Logger, schedule: RetrySchedule = .hyperswitch, requestTimeout: Duration = .seconds(30), batchSize: Int = 32) {
        self.postgres = postgres
        self.configuration = configuration
        self.logger = logger
        self.schedule = schedule
        self.requestTimeout = requestTimeout
        self.batchSize = batchSize
    }

    struct Due: Sendable {
        var eventId: String
        var merchantId: String
        var endpointId: String?
        var url: String
        var body: String
        var headers: [String: String]
        var attemptCount: Int
    }

    struct Outcome: Sendable {
        var status: Int?
        var responseHeaders: [String: String]
        var responseBody: String?
        var error: String?
        var success: Bool { status.map { (200..<300).contains($0) } ?? false }
    }

    public func run() async throws {
        var configuration = HTTPClient.Configuration()
        // A redirect is a failed delivery: following it would send signed data somewhere the
        // merchant did not configure.
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(Int64(requestTimeout.components.seconds)))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let sent = try await self.deliverDue(http: http)
                    if sent == 0 { try? await Task.sleep(for: .milliseconds(25)) }
                } catch {
                    self.logger.error("delivery pass failed", metadata: ["error": .string(String(describing: error))])
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
        }
        try await http.shutdown()
    }

    /// One pass: claim due rows, send them concurrently, record every attempt. Returns how many.
    @discardableResult
    func deliverDue(http: HTTPClient) async throws -> Int {
        let logger = logger
        return try await postgres.withTransaction(logger: logger) { connection -> Int in
            let rows = try await connection.query("""
                SELECT event_id, merchant_id, webhook_endpoint_id, target_url, request_body, request_headers::text, attempt_count
                FROM webhooks.events
                WHERE delivery_status = 'pending' AND next_attempt_at <= now()
                ORDER BY next_attempt_at
                LIMIT \(batchSize)
                FOR UPDATE SKIP LOCKED
                """, logger: logger)
            var due: [Due] = []
            for try await (eventId, merchantId, endpointId, url, body, headersText, attempts) in rows.decode((String, String, String?, String, String, String, Int).self) {
                let headers = (try? PaywireJSON.decoder.decode([String: String].self, from: Data(headersText.utf8))) ?? [:]
                due.append(Due(eventId: eventId, merchantId: merchantId, endpointId: endpointId, url: url, body: body, headers: headers, attemptCount: attempts))
            }
            guard !due.isEmpty else { return 0 }
            let outcomes = await withTaskGroup(of: (Int, Outcome).self) { group in
                for (index, item) in due.enumerated() {
                    group.addTask { (index, await self.send(item, http: http)) }
                }
                var outcomes = [Outcome?](repeating: nil, count: due.count)
                for await (index, outcome) in group { outcomes[index] = outcome }
                return outcomes.map { $0! }
            }
            for (item, outcome) in zip(due, outcomes) {
                try await record(item, outcome, on: connection)
            }
            return due.count
        }
    }

    func send(_ item: Due, http: HTTPClient) async -> Outcome {
        var request = HTTPClientRequest(url: item.url)
        request.method = .POST
        for (name, value) in item.headers { request.headers.add(name: name, value: value) }
        // Standard Webhooks headers are signed at send time, so every retry carries a fresh
        // timestamp that receivers' replay windows accept.
        if let endpointId = item.endpointId,
           let secrets = try? await configuration.endpointSecrets(merchantId: item.merchantId, endpointId: endpointId) {
            let timestamp = Int(Date().timeIntervalSince1970)
            request.headers.replaceOrAdd(name: "webhook-id", value: item.eventId)
            request.headers.replaceOrAdd(name: "webhook-timestamp", value: String(timestamp))
            request.headers.replaceOrAdd(name: "webhook-signature", value: OutgoingWebhook.standardSignature(
                id: item.eventId, timestamp: timestamp, body: item.body, secrets: [secrets.current] + (secrets.previous.map { [$0] } ?? [])
            ))
        }
        request.body = .bytes(ByteBuffer(string: item.body))
        do {
            let response = try await http.execute(request, timeout: .seconds(Int64(requestTimeout.components.seconds)))
            // Whatever the endpoint answers is kept as text PostgreSQL can hold: capped, NUL and
            // invalid UTF-8 replaced, so one endpoint's odd answer can never fail the record.
            var body = ByteBuffer()
            for try await var chunk in response.body {
                let room = Self.storedResponseBytes - body.readableBytes
                guard room > 0 else { break }
                if let slice = chunk.readSlice(length: min(room, chunk.readableBytes)) { body.writeImmutableBuffer(slice) }
            }
            var headers: [String: String] = [:]
            for header in response.headers { headers[Self.storable(header.name.lowercased())] = Self.storable(header.value) }
            return Outcome(status: Int(response.status.code), responseHeaders: headers, responseBody: Self.storable(String(decoding: body.readableBytesView, as: UTF8.self)), error: nil)
        } catch {
            return Outcome(status: nil, responseHeaders: [:], responseBody: nil, error: Self.storable(String(describing: error)))
        }
    }

    /// How much of a response body the attempt log keeps.
    static let storedResponseBytes = 4096

    /// Text as PostgreSQL's text and jsonb can store it: NUL becomes U+FFFD.
    static func storable(_ text: String) -> String {
        text.utf8.contains(0) ? text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : text
    }

    func record(_ item: Due, _ outcome: Outcome, on connection: PostgresConnection) async throws {
        let attemptsMade = item.attemptCount + 1
        let kind = item.attemptCount == 0 ? "initial_attempt" : "automatic_retry"
        let attemptId = item.attemptCount == 0 ? item.eventId : OutgoingWebhook.makeEventId()
        let responseHeaders = String(decoding: (try? PaywireJSON.encoder.encode(outcome.responseHeaders)) ?? Data("{}".utf8), as: UTF8.self)
        try await connection.query("""
            INSERT INTO webhooks.delivery_attempts (attempt_id, event_id, delivery_attempt, response_status, response_headers,
                response_body, error_message, is_webhook_notified)
            VALUES (\(attemptId), \(item.eventId), \(kind), \(outcome.status), \(responseHeaders)::jsonb, \(outcome.responseBody),
                \(outcome.error), \(outcome.success))
            """, logger: logger)
        if outcome.success {
            delivered.increment()
            try await connection.query(
                "UPDATE webhooks.events SET delivery_status = 'delivered', attempt_count = \(attemptsMade) WHERE event_id = \(item.eventId)",
                logger: logger
            )
        } else {
            failed.increment()
            if let delay = schedule.delay(afterAttempts: attemptsMade) {
                try await connection.query("""
                    UPDATE webhooks.events SET attempt_count = \(attemptsMade),
                        next_attempt_at = now() + make_interval(secs => \(Double(delay)))
                    WHERE event_id = \(item.eventId)
                    """, logger: logger)
            } else {
                try await connection.query(
                    "UPDATE webhooks.events SET delivery_status = 'retries_exceeded', attempt_count = \(attemptsMade) WHERE event_id = \(item.eventId)",
                    logger: logger
                )
            }
        }
    }
}
