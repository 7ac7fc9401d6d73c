import CRdKafka
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
    /// librdkafka topic handles by name. Producing by name would make librdkafka look the topic
    /// up (and take its locks) for every message.
    private let topicHandles = NIOLockedValueBox<[String: UnsafeSendable<OpaquePointer>]>([:])

    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws {
        state = NIOLockedValueBox(KafkaProducerStateMachine())
        self.logger = logger
        client = try RDKafkaClient.make(
            kind: .producer,
            properties: configuration.rdProperties,
            logger: logger,
            onDelivery: { opaque, err, partition, offset in
                guard let opaque else { return }
                let slot = KafkaDeliveryBatch.slot(from: opaque)
                let result: Result<KafkaDeliveryReport, KafkaError> = err == RD_KAFKA_RESP_ERR_NO_ERROR
                    ? .success(KafkaDeliveryReport(partition: partition, offset: offset))
                    : .failure(KafkaError(kind: .delivery, rdError: err))
                slot.batch.takeUnretainedValue().record(slot.index, result)
            }
        )
        startPollThread()
    }

    /// Delivery reports are served by `rd_kafka_poll`, which blocks; it gets a thread of its own.
    private func startPollThread() {
        let client = client
        let thread = Thread { [self] in
            while !self.stopPolling.withLockedValue({ $0 }) {
                rd_kafka_poll(client.handle, 50)
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
        var cachedTopic: (name: String, handle: OpaquePointer)?
        for (index, message) in messages.enumerated() {
            // Batches are usually for one topic: look its handle up once.
            if cachedTopic?.name != message.topic, let handle = topicHandle(message.topic) {
                cachedTopic = (message.topic, handle)
            }
            while true {
                let err = produce(message, topicHandle: cachedTopic?.handle, opaque: batch.opaque(for: index))
                if err == RD_KAFKA_RESP_ERR_NO_ERROR { break }
                if err == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                    // The local queue drains as the poll thread serves delivery reports.
                    try? await Task.sleep(for: .milliseconds(1))
                    continue
                }
                batch.record(index, .failure(KafkaError(kind: .produce, rdError: err, context: message.topic)))
                break
            }
        }
        return await batch.wait()
    }

    private func topicHandle(_ name: String) -> OpaquePointer? {
        let client = client
        return topicHandles.withLockedValue { handles in
            if let handle = handles[name] { return handle.value }
            guard let handle = rd_kafka_topic_new(client.handle, name, nil) else { return nil }
            handles[name] = UnsafeSendable(handle)
            return handle
        }
    }

    private func produce(_ message: KafkaProducerMessage, topicHandle: OpaquePointer?, opaque: UnsafeMutableRawPointer?) -> rd_kafka_resp_err_t {
        guard let topicHandle else { return rd_kafka_last_error() }
        // Header names and values must outlive rd_kafka_produceva, which copies them.
        let headerNames = message.headers.map { strdup($0.name) }
        defer { headerNames.forEach { free($0) } }
        return message.value.withUnsafeBytes { value in
            withKey(message.key) { keyPointer, keyCount in
                withHeaderValues(message.headers) { headerValues in
                    // Built on the stack: one produce is one call, no allocation for the arguments.
                    withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 5 + message.headers.count) { values in
                        var count = 0
                        func append(_ configure: (inout rd_kafka_vu_t) -> Void) {
                            var entry = rd_kafka_vu_t()
                            configure(&entry)
                            values.initializeElement(at: count, to: entry)
                            count += 1
                        }
                        append { $0.vtype = RD_KAFKA_VTYPE_RKT; $0.u.rkt = topicHandle }
                        append {
                            $0.vtype = RD_KAFKA_VTYPE_VALUE
                            $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress)
                            $0.u.mem.size = value.count
                        }
                        if let keyPointer {
                            append {
                                $0.vtype = RD_KAFKA_VTYPE_KEY
                                $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: keyPointer)
                                $0.u.mem.size = keyCount
                            }
                        }
                        append { $0.vtype = RD_KAFKA_VTYPE_MSGFLAGS; $0.u.i = RD_KAFKA_MSG_F_COPY }
                        append { $0.vtype = RD_KAFKA_VTYPE_OPAQUE; $0.u.ptr = opaque }
                        for index in message.headers.indices {
                            append {
                                $0.vtype = RD_KAFKA_VTYPE_HEADER
                                $0.u.header.name = UnsafePointer(headerNames[index])
                                $0.u.header.val = headerValues[index]
                                $0.u.header.size = message.headers[index].value.count
                            }
                        }
                        defer { values.baseAddress!.deinitialize(count: count) }
                        guard let error = rd_kafka_produceva(client.handle, values.baseAddress, count) else {
                            return RD_KAFKA_RESP_ERR_NO_ERROR
                        }
                        let code = rd_kafka_error_code(error)
                        rd_kafka_error_destroy(error)
                        return code
                    }
                }
            }
        }
    }

    private func withKey<R>(_ key: [UInt8]?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
        guard let key else { return body(nil, 0) }
        return key.withUnsafeBytes { body($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), $0.count) }
    }

    private func withHeaderValues<R>(_ headers: [KafkaHeader], _ body: ([UnsafeRawPointer?]) -> R) -> R {
        if headers.isEmpty { return body([]) }
        let buffers = headers.map { header -> UnsafeMutableRawBufferPointer in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, header.value.count), alignment: 1)
            buffer.copyBytes(from: header.value)
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        return body(buffers.map { UnsafeRawPointer($0.baseAddress) })
    }

    /// Waits until every queued message is acknowledged or failed, up to the timeout.
    public func flush(timeout: Duration = .seconds(10)) async {
        let client = client
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let executor = RDKafkaBlockingExecutor(label: "paywire-kafka-producer-flush")
        _ = await executor.run { rd_kafka_flush(client.handle, milliseconds) }
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
        await executor.run {
            rd_kafka_purge(client.handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
            // Purged messages report through the poll thread; give it a moment to serve them.
            rd_kafka_flush(client.handle, 1000)
        }
        stopPolling.withLockedValue { $0 = true }
        await executor.run { self.pollDone.wait() }
        let handles = topicHandles.withLockedValue { handles in
            defer { handles.removeAll() }
            return Array(handles.values)
        }
        await executor.run {
            for handle in handles { rd_kafka_topic_destroy(handle.value) }
            client.destroy()
        }
        for batch in state.withLockedValue({ $0.close() }) { batch.failOutstanding(with: .shutdown) }
        logger.debug("Kafka producer closed")
    }
}
