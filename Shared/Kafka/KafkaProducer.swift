import Foundation
import Logging
import ServiceLifecycle
import NIOConcurrencyHelpers

/// An idempotent producer (`enable.idempotence=true`, `acks=all`) whose sends return only once
/// the broker has acknowledged the message, so a caller can treat "returned" as "durable".
///
/// It is a `Service`: run it in the service group after anything that produces through it has
/// stopped, and it flushes what is still queued on shutdown.
public final class KafkaProducer: Service, Sendable {
    private let client: RDKafkaClient
    private let state: NIOLockedValueBox<KafkaProducerStateMachine>
    private let stopPolling = NIOLockedValueBox(false)
    private let logger: Logger
    private let pollDone = DispatchSemaphore(value: 0)

    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws {
        state = NIOLockedValueBox(KafkaProducerStateMachine())
        self.logger = logger
        client = try RDKafkaClient.make(
            kind: .producer,
            properties: configuration.rdProperties,
            logger: logger,
            onDelivery: { opaque, result in
                guard let opaque else { return }
                let slot = KafkaDeliveryBatch.slot(from: opaque)
                slot.batch.takeUnretainedValue().record(slot.index, result)
            }
        )
        startPollThread()
    }

    /// Delivery reports are served by librdkafka's poll, which blocks; it gets a thread of its own.
    /// The poll returns as soon as a report arrives, so its wait only sets how often an idle
    /// producer wakes; shutdown ends it at once (`wakeEventServer`).
    private func startPollThread() {
        let client = client
        let thread = Thread { [self] in
            while !self.stopPolling.withLockedValue({ $0 }) {
                client.serveEvents(timeoutMilliseconds: 1000)
            }
            self.pollDone.signal()
        }
        thread.name = "paywire-kafka-producer-poll"
        thread.start()
    }

    /// Sends one message and returns when it is acknowledged.
    public func send(_ message: KafkaProducerMessage) async throws -> KafkaDeliveryReport {
        try await sendBatch([message])[0].get()
    }

    /// Sends messages in order and returns each one's outcome when all are acknowledged or
    /// failed. Order within a partition is preserved, retries included (idempotence).
    public func sendBatch(_ messages: [KafkaProducerMessage]) async throws -> [Result<KafkaDeliveryReport, KafkaError>] {
        guard !messages.isEmpty else { return [] }
        let batch = KafkaDeliveryBatch(count: messages.count)
        if case .reject(let error) = state.withLockedValue({ $0.start(batch) }) { throw error }
        defer { state.withLockedValue { $0.finish(batch) } }
        // No produce call may run once shutdown destroys the handle, whatever order services
        // stop in: the destruction waits for the senders inside this loop (not for their
        // acknowledgements, which come after) and lets no new one in.
        guard state.withLockedValue({ $0.enterProduce() }) else { throw KafkaError.shutdown }
        var cachedTopic: (name: String, handle: RDKafkaClient.TopicHandle)?
        var shutDown = false
        for (index, message) in messages.enumerated() {
            if shutDown {
                batch.record(index, .failure(.shutdown))
                continue
            }
            // Batches are usually for one topic: look its handle up once.
            if cachedTopic?.name != message.topic, let handle = client.topicHandle(message.topic) {
                cachedTopic = (message.topic, handle)
            }
            produce: while true {
                switch client.produce(message, topic: cachedTopic?.name == message.topic ? cachedTopic?.handle : nil, opaque: batch.opaque(for: index)) {
                case .queued:
                    break produce
                case .queueFull:
                    // The local queue drains as the poll thread serves delivery reports, unless
                    // the producer is being destroyed (its poll thread has stopped).
                    if state.withLockedValue({ $0.isDestroyRequested }) {
                        batch.record(index, .failure(.shutdown))
                        shutDown = true
                        break produce
                    }
                    try? await Task.sleep(for: .milliseconds(1))
                case .failed(let error):
                    batch.record(index, .failure(error))
                    break produce
                }
            }
        }
        state.withLockedValue { $0.leaveProduce() }?.resume()
        return await batch.wait()
    }

    /// Waits until every queued message is acknowledged or failed, up to the timeout.
    public func flush(timeout: Duration = .seconds(10)) async {
        let client = client
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let executor = RDKafkaBlockingExecutor(label: "paywire-kafka-producer-flush")
        await executor.run { client.flush(timeoutMilliseconds: milliseconds) }
    }

    /// Broker metadata: partition counts per topic. Used for readiness and topic checks.
    public func topicPartitionCounts(timeout: Duration = .seconds(5)) async throws -> [String: Int] {
        let client = client
        let milliseconds = Int32(timeout.components.seconds * 1000)
        return try await RDKafkaBlockingExecutor(label: "paywire-kafka-metadata").run {
            try client.topicPartitionCounts(timeoutMilliseconds: milliseconds)
        }
    }

    var rdClient: RDKafkaClient { client }

    public func run() async throws {
        // Nothing to do until shutdown: delivery reports are served by the poll thread.
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Flushes, then destroys the handle. Anything still unacknowledged after the flush is
    /// purged and its sender hears of it, so no continuation is left hanging.
    public func shutdown(flushTimeout: Duration = .seconds(10)) async {
        let alreadyClosed = state.withLockedValue { machine -> Bool in
            if machine.state != .running { return true }
            machine.beginClosing()
            return false
        }
        guard !alreadyClosed else { return }
        await flush(timeout: flushTimeout)
        let client = client
        let executor = RDKafkaBlockingExecutor(label: "paywire-kafka-producer-close")
        // Purged messages report through the poll thread, which is still running.
        await executor.run { client.purgeAndFlush() }
        stopPolling.withLockedValue { $0 = true }
        client.wakeEventServer()
        await executor.run { self.pollDone.wait() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if state.withLockedValue({ $0.requestDestroy(continuation) }) == .destroyNow { continuation.resume() }
        }
        await executor.run { client.destroy() }
        for batch in state.withLockedValue({ $0.close() }) { batch.failOutstanding(with: .shutdown) }
        logger.debug("Kafka producer closed")
    }
}
