import CRdKafka
import Foundation
import Logging
import NIOConcurrencyHelpers

/// A consumer-group member. Offsets are *stored* only through `storeOffset(for:)` (librdkafka
/// commits stored offsets in the background and on close), so a message whose handler never
/// finished is delivered again to whoever owns its partition next.
public final class KafkaConsumer: Sendable {
    private let client: RDKafkaClient
    private let queue: UnsafeSendable<OpaquePointer>
    private let executor: RDKafkaBlockingExecutor
    private let logger: Logger
    private let closed = NIOLockedValueBox(false)
    private let rebalances: NIOLockedValueBox<[@Sendable (KafkaRebalanceEvent) -> Void]>

    public init(configuration: KafkaConsumerConfiguration, logger: Logger) throws {
        var logger = logger
        logger[metadataKey: "kafka.group"] = .string(configuration.groupID)
        self.logger = logger
        let rebalances = NIOLockedValueBox<[@Sendable (KafkaRebalanceEvent) -> Void]>([])
        self.rebalances = rebalances
        let rebalanceLogger = logger
        client = try RDKafkaClient.make(
            kind: .consumer,
            properties: configuration.rdProperties,
            logger: logger,
            onRebalance: { rk, err, partitions in
                let list = KafkaConsumer.partitions(in: partitions)
                let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
                switch err {
                case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
                    if cooperative {
                        if let error = rd_kafka_incremental_assign(rk, partitions) { rd_kafka_error_destroy(error) }
                    } else {
                        rd_kafka_assign(rk, partitions)
                    }
                    rebalanceLogger.info("partitions assigned", metadata: ["kafka.partitions": .string(list.map(\.description).joined(separator: ","))])
                    for observer in rebalances.withLockedValue({ $0 }) { observer(.assigned(list)) }
                case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
                    // Commit what was stored before giving the partitions away, so the next
                    // owner starts after the last message whose effects are committed.
                    rd_kafka_commit(rk, nil, 0)
                    if cooperative {
                        if let error = rd_kafka_incremental_unassign(rk, partitions) { rd_kafka_error_destroy(error) }
                    } else {
                        rd_kafka_assign(rk, nil)
                    }
                    rebalanceLogger.info("partitions revoked", metadata: ["kafka.partitions": .string(list.map(\.description).joined(separator: ","))])
                    for observer in rebalances.withLockedValue({ $0 }) { observer(.revoked(list)) }
                default:
                    rebalanceLogger.error("rebalance error", metadata: ["kafka.error": .string(String(cString: rd_kafka_err2str(err)))])
                    rd_kafka_assign(rk, nil)
                }
            }
        )
        // Route the main queue (logs, errors, rebalances) into the consumer queue we poll.
        rd_kafka_poll_set_consumer(client.handle)
        queue = UnsafeSendable(rd_kafka_queue_get_consumer(client.handle)!)
        executor = RDKafkaBlockingExecutor(label: "paywire-kafka-consumer-\(configuration.groupID)")

        let topics = rd_kafka_topic_partition_list_new(Int32(configuration.topics.count))
        defer { rd_kafka_topic_partition_list_destroy(topics) }
        for topic in configuration.topics {
            rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA)
        }
        let err = rd_kafka_subscribe(client.handle, topics)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_queue_destroy(queue.value)
            client.destroy()
            throw KafkaError(kind: .consume, rdError: err, context: "subscribe")
        }
    }

    var isClosed: Bool { closed.withLockedValue { $0 } }

    /// Called from librdkafka's rebalance callback, on the polling thread.
    public func onRebalance(_ observer: @escaping @Sendable (KafkaRebalanceEvent) -> Void) {
        rebalances.withLockedValue { $0.append(observer) }
    }

    /// Up to `maxMessages`, waiting at most `timeout` for the first. Polling happens on the
    /// consumer's own thread; rebalance callbacks run there too.
    public func poll(maxMessages: Int = 500, timeout: Duration = .milliseconds(100)) async throws -> [KafkaConsumerMessage] {
        guard !isClosed else { throw KafkaError.shutdown }
        let queue = queue
        let logger = logger
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return try await executor.run { [closed] in
            guard !closed.withLockedValue({ $0 }) else { throw KafkaError.shutdown }
            var raw = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: maxMessages)
            // librdkafka's batch call waits for a full batch or the whole timeout, which would add
            // the timeout to every message under light load (a request waiting for its reply).
            // So: take what is there; if nothing, wait for one message; then take what followed.
            let count = raw.withUnsafeMutableBufferPointer { buffer -> Int in
                let base = buffer.baseAddress!
                var count = rd_kafka_consume_batch_queue(queue.value, 0, base, maxMessages)
                if count == 0 {
                    count = rd_kafka_consume_batch_queue(queue.value, milliseconds, base, 1)
                    if count == 1 && maxMessages > 1 {
                        let more = rd_kafka_consume_batch_queue(queue.value, 0, base + 1, maxMessages - 1)
                        if more > 0 { count += more }
                    }
                }
                return count
            }
            guard count >= 0 else {
                throw KafkaError(kind: .consume, rdError: rd_kafka_last_error(), context: "consume")
            }
            var messages: [KafkaConsumerMessage] = []
            messages.reserveCapacity(count)
            var topicNames: [OpaquePointer: String] = [:]
            for index in 0..<count {
                guard let pointer = raw[index] else { continue }
                defer { rd_kafka_message_destroy(pointer) }
                let message = pointer.pointee
                if message.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    logger.warning("consumer error", metadata: ["kafka.error": .string(String(cString: rd_kafka_err2str(message.err)))])
                    continue
                }
                let topic: String
                if let rkt = message.rkt, let name = topicNames[rkt] {
                    topic = name
                } else {
                    topic = String(cString: rd_kafka_topic_name(message.rkt))
                    if let rkt = message.rkt { topicNames[rkt] = topic }
                }
                messages.append(KafkaConsumer.copy(pointer, topic: topic))
            }
            return messages
        }
    }

    private static func copy(_ pointer: UnsafeMutablePointer<rd_kafka_message_t>, topic: String) -> KafkaConsumerMessage {
        let message = pointer.pointee
        let value = message.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: message.len)) } ?? []
        let key = message.key.map { Array(UnsafeRawBufferPointer(start: $0, count: message.key_len)) }
        var headers: [KafkaHeader] = []
        var rawHeaders: OpaquePointer?
        if rd_kafka_message_headers(pointer, &rawHeaders) == RD_KAFKA_RESP_ERR_NO_ERROR, let rawHeaders {
            var index = 0
            var name: UnsafePointer<CChar>?
            var headerValue: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(rawHeaders, index, &name, &headerValue, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let bytes = headerValue.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                headers.append(KafkaHeader(name: name.map { String(cString: $0) } ?? "", value: bytes))
                index += 1
            }
        }
        return KafkaConsumerMessage(
            topic: topic,
            partition: message.partition,
            offset: message.offset,
            key: key,
            value: value,
            headers: headers
        )
    }

    /// Marks the message as done: the group resumes after it. Call only once its effects are
    /// committed. Storing for a partition this member no longer owns is refused by librdkafka;
    /// the new owner will see the message again and drop it as a duplicate.
    @discardableResult
    public func storeOffset(for message: KafkaConsumerMessage) -> Bool {
        storeOffsets([message.topicPartition: message.offset])
    }

    /// Stores, per partition, the offset after the given last-handled offset, in one call.
    @discardableResult
    public func storeOffsets(_ lastHandled: [KafkaTopicPartition: Int64]) -> Bool {
        guard !lastHandled.isEmpty else { return true }
        let list = rd_kafka_topic_partition_list_new(Int32(lastHandled.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in lastHandled {
            rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)?.pointee.offset = offset + 1
        }
        let err = rd_kafka_offsets_store(client.handle, list)
        var stored = err == RD_KAFKA_RESP_ERR_NO_ERROR
        for index in 0..<Int(list!.pointee.cnt) where list!.pointee.elems[index].err != RD_KAFKA_RESP_ERR_NO_ERROR {
            stored = false
            logger.debug("offset not stored", metadata: [
                "kafka.partition": .string("\(String(cString: list!.pointee.elems[index].topic))[\(list!.pointee.elems[index].partition)]"),
                "kafka.error": .string(String(cString: rd_kafka_err2str(list!.pointee.elems[index].err))),
            ])
        }
        return stored
    }

    /// Commits the stored offsets now and waits for the broker's answer.
    public func commitStoredOffsets() async throws {
        let client = client
        try await executor.run {
            let err = rd_kafka_commit(client.handle, nil, 0)
            // _NO_OFFSET: nothing new was stored since the last commit.
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET else {
                throw KafkaError(kind: .commit, rdError: err)
            }
        }
    }

    /// Each partition's low and high watermark for `topic`, as the broker has them now: a reader
    /// that has seen offset `high - 1` of every partition has read everything produced so far.
    public func watermarks(topic: String, timeout: Duration = .seconds(5)) async throws -> [Int32: KafkaWatermarks] {
        guard !isClosed else { throw KafkaError.shutdown }
        let client = client
        let milliseconds = Int32(timeout.components.seconds * 1000)
        return try await executor.run {
            guard let partitions = try client.topicPartitionCounts(timeoutMilliseconds: milliseconds)[topic] else {
                throw KafkaError(kind: .metadata, code: RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC.rawValue, message: "unknown topic \(topic)")
            }
            var result: [Int32: KafkaWatermarks] = [:]
            for partition in 0..<Int32(partitions) {
                var low: Int64 = 0
                var high: Int64 = 0
                let err = rd_kafka_query_watermark_offsets(client.handle, topic, partition, &low, &high, milliseconds)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(kind: .metadata, rdError: err, context: "watermarks of \(topic)[\(partition)]") }
                result[partition] = KafkaWatermarks(low: low, high: high)
            }
            return result
        }
    }

    public func assignment() async throws -> [KafkaTopicPartition] {
        let client = client
        return try await executor.run {
            var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            let err = rd_kafka_assignment(client.handle, &list)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(kind: .consume, rdError: err) }
            defer { if let list { rd_kafka_topic_partition_list_destroy(list) } }
            return KafkaConsumer.partitions(in: list)
        }
    }

    /// Polls and hands each message to `handler`, storing a partition's offset only once every
    /// message up to it was handled (its effects are committed). Returns when `shouldStop` turns
    /// true or the consumer closes; rethrows the handler's error without storing that message's
    /// offset.
    ///
    /// With `concurrentKeys`, see `KeyedPipeline`: messages of different keys run concurrently,
    /// each key in order, so a slow message (a connector call) holds up only its own key.
    public func run(
        shouldStop: @escaping @Sendable () -> Bool = { false },
        concurrentKeys: Bool = false,
        handler: @escaping @Sendable (KafkaConsumerMessage) async throws -> Void
    ) async throws {
        if concurrentKeys {
            try await KeyedPipeline(consumer: self, handler: handler).run(shouldStop: shouldStop)
            return
        }
        while !shouldStop() && !Task.isCancelled && !isClosed {
            let messages: [KafkaConsumerMessage]
            do {
                messages = try await poll()
            } catch let error as KafkaError where error.kind == .shutdown {
                return
            }
            // Offsets of handled messages are stored once per batch, and before an error
            // propagates, so the stored position never passes a message whose handler failed.
            var handled: [KafkaTopicPartition: Int64] = [:]
            do {
                for message in messages {
                    try await handler(message)
                    handled[message.topicPartition] = message.offset
                }
            } catch {
                storeOffsets(handled)
                throw error
            }
            storeOffsets(handled)
        }
    }

    /// Leaves the group cleanly: commits stored offsets and hands the partitions to the others
    /// at once instead of after the session timeout.
    public func close() async {
        guard closed.withLockedValue({ wasClosed in defer { wasClosed = true }; return !wasClosed }) else { return }
        let client = client
        let queue = queue
        await executor.run {
            let err = rd_kafka_consumer_close(client.handle)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                client.logger.warning("consumer close", metadata: ["kafka.error": .string(String(cString: rd_kafka_err2str(err)))])
            }
            rd_kafka_queue_destroy(queue.value)
            client.destroy()
        }
        logger.debug("Kafka consumer closed")
    }

    /// Drops the consumer the way a killed process would: no offset commit, no LeaveGroup. The
    /// group notices only after the session timeout. For failure tests.
    public func abandon() async {
        guard closed.withLockedValue({ wasClosed in defer { wasClosed = true }; return !wasClosed }) else { return }
        let client = client
        let queue = queue
        await executor.run {
            rd_kafka_queue_destroy(queue.value)
            client.destroy(skipConsumerClose: true)
        }
    }

    static func partitions(in list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) -> [KafkaTopicPartition] {
        guard let list else { return [] }
        return (0..<Int(list.pointee.cnt)).map { index in
            let element = list.pointee.elems[index]
            return KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)
        }
    }
}

/// For C handles confined to one executor thread by construction.
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
