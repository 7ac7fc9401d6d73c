import CRdKafka
import Logging

/// The consumer's C calls. Blocking ones (consume, commit, metadata, close) are called by
/// `KafkaConsumer` on its own executor thread, never on the cooperative pool.
extension RDKafkaClient {
    func subscribe(_ topics: [String]) throws {
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics {
            rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA)
        }
        let err = rd_kafka_subscribe(handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(kind: .consume, rdError: err, context: "subscribe") }
    }

    /// Up to `maxMessages` from the consumer queue, waiting at most `timeoutMilliseconds` for the
    /// first. librdkafka's batch call waits for a full batch or the whole timeout, which would add
    /// the timeout to every message under light load (a request waiting for its reply), so: take
    /// what is there; if nothing, wait for one message; then take what followed.
    /// Makes a `consume` blocked in its wait return now (empty). Any thread; the caller keeps
    /// the client from being destroyed meanwhile.
    func interruptConsume() {
        if let consumerQueue { rd_kafka_queue_yield(consumerQueue) }
    }

    func consume(maxMessages: Int, timeoutMilliseconds: Int32) throws -> [KafkaConsumerMessage] {
        guard let queue = consumerQueue else { return [] }
        var raw = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: maxMessages)
        let count = raw.withUnsafeMutableBufferPointer { buffer -> Int in
            let base = buffer.baseAddress!
            var count = rd_kafka_consume_batch_queue(queue, 0, base, maxMessages)
            if count == 0 {
                count = rd_kafka_consume_batch_queue(queue, timeoutMilliseconds, base, 1)
                if count == 1 && maxMessages > 1 {
                    let more = rd_kafka_consume_batch_queue(queue, 0, base + 1, maxMessages - 1)
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
            messages.append(Self.copy(pointer, topic: topic))
        }
        return messages
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
        return KafkaConsumerMessage(topic: topic, partition: message.partition, offset: message.offset, key: key, value: value, headers: headers)
    }

    /// Stores, per partition, the offset after the given last-handled offset, in one call; false
    /// when any partition was refused (no longer ours).
    func storeOffsets(_ lastHandled: [KafkaTopicPartition: Int64]) -> Bool {
        let list = rd_kafka_topic_partition_list_new(Int32(lastHandled.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in lastHandled {
            rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)?.pointee.offset = offset + 1
        }
        let err = rd_kafka_offsets_store(handle, list)
        var stored = err == RD_KAFKA_RESP_ERR_NO_ERROR
        for index in 0..<Int(list!.pointee.cnt) where list!.pointee.elems[index].err != RD_KAFKA_RESP_ERR_NO_ERROR {
            stored = false
            // Refused while the partition is not assigned to this member (a rebalance): the new
            // owner reads from the committed offset. Worth seeing when a group's progress stalls.
            logger.notice("offset not stored", metadata: [
                "kafka.partition": .string("\(String(cString: list!.pointee.elems[index].topic))[\(list!.pointee.elems[index].partition)]"),
                "kafka.error": .string(String(cString: rd_kafka_err2str(list!.pointee.elems[index].err))),
            ])
        }
        return stored
    }

    /// Asks for the stored offsets to be committed and returns at once: librdkafka sends the
    /// commit from its own thread, and a poll later hands its answer to the offset-commit
    /// callback (which logs a failure). A failed commit is repeated by the next one.
    func requestCommitOfStoredOffsets() {
        _ = rd_kafka_commit(handle, nil, 1)
    }

    /// Commits the stored offsets and waits for the broker's answer.
    func commitStoredOffsets() throws {
        let err = rd_kafka_commit(handle, nil, 0)
        // _NO_OFFSET: nothing new was stored since the last commit.
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET else {
            throw KafkaError(kind: .commit, rdError: err)
        }
    }

    func watermarks(topic: String, timeoutMilliseconds: Int32) throws -> [Int32: KafkaWatermarks] {
        guard let partitions = try topicPartitionCounts(timeoutMilliseconds: timeoutMilliseconds)[topic] else { throw KafkaError.unknownTopic(topic) }
        var result: [Int32: KafkaWatermarks] = [:]
        for partition in 0..<Int32(partitions) {
            var low: Int64 = 0
            var high: Int64 = 0
            let err = rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, timeoutMilliseconds)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(kind: .metadata, rdError: err, context: "watermarks of \(topic)[\(partition)]") }
            result[partition] = KafkaWatermarks(low: low, high: high)
        }
        return result
    }

    /// Assigns every partition of `topics` from its high watermark as the broker has it now: what
    /// is produced from here on is read, nothing before. No group is joined.
    /// Every partition of `topics` with the offset it ends at now (its high watermark).
    func highWatermarks(topics: [String], timeoutMilliseconds: Int32) throws -> [KafkaTopicPartition: Int64] {
        var ends: [KafkaTopicPartition: Int64] = [:]
        for topic in topics {
            for (partition, marks) in try watermarks(topic: topic, timeoutMilliseconds: timeoutMilliseconds) {
                ends[KafkaTopicPartition(topic: topic, partition: partition)] = marks.high
            }
        }
        return ends
    }

    /// Assigns exactly these partitions, each read from its offset (replacing any assignment).
    func assign(_ offsets: [KafkaTopicPartition: Int64]) throws {
        let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in offsets {
            rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)?.pointee.offset = offset
        }
        let err = rd_kafka_assign(handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(kind: .consume, rdError: err, context: "assign") }
    }

    /// The group's committed offset for each partition of `topic` (nil where none).
    func committedOffsets(topic: String, timeoutMilliseconds: Int32) throws -> [Int32: Int64?] {
        guard let partitions = try topicPartitionCounts(timeoutMilliseconds: timeoutMilliseconds)[topic] else { throw KafkaError.unknownTopic(topic) }
        let list = rd_kafka_topic_partition_list_new(Int32(partitions))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in 0..<Int32(partitions) { rd_kafka_topic_partition_list_add(list, topic, partition) }
        let err = rd_kafka_committed(handle, list, timeoutMilliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(kind: .commit, rdError: err, context: "committed offsets of \(topic)") }
        var result: [Int32: Int64?] = [:]
        for index in 0..<Int(list!.pointee.cnt) {
            let element = list!.pointee.elems[index]
            result[element.partition] = element.offset >= 0 ? element.offset : nil
        }
        return result
    }

    func assignment() throws -> [KafkaTopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        let err = rd_kafka_assignment(handle, &list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(kind: .consume, rdError: err) }
        defer { if let list { rd_kafka_topic_partition_list_destroy(list) } }
        return Self.partitionList(list)
    }

    /// Stops (or restarts) fetching for the partitions currently assigned. The consumer keeps
    /// polling meanwhile, so it stays in its group; on resume, fetching starts after the last
    /// message handed to the application (nothing is skipped, nothing read twice). Partitions of
    /// `exceptTopics` are left as they are: a topic other messages wait on must keep flowing.
    func setPaused(_ paused: Bool, exceptTopics: Set<String> = []) throws -> [KafkaTopicPartition] {
        var assigned: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        let err = rd_kafka_assignment(handle, &assigned)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let assigned else { throw KafkaError(kind: .consume, rdError: err, context: "assignment") }
        defer { rd_kafka_topic_partition_list_destroy(assigned) }
        let partitions = Self.partitionList(assigned).filter { !exceptTopics.contains($0.topic) }
        guard !partitions.isEmpty else { return [] }
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions { rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition) }
        let changed = paused ? rd_kafka_pause_partitions(handle, list) : rd_kafka_resume_partitions(handle, list)
        guard changed == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(kind: .consume, rdError: changed, context: paused ? "pause" : "resume") }
        return partitions
    }

    /// Per assigned partition, how many messages lie beyond the consumer's position (the next it
    /// would fetch), from what librdkafka last heard of the high watermark: no request is sent.
    func lagBeyondPosition() -> [KafkaTopicPartition: Int64] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [:] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        guard rd_kafka_position(handle, list) == RD_KAFKA_RESP_ERR_NO_ERROR else { return [:] }
        var lag: [KafkaTopicPartition: Int64] = [:]
        for index in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[index]
            var low: Int64 = -1, high: Int64 = -1
            let topic = String(cString: element.topic)
            guard rd_kafka_get_watermark_offsets(handle, topic, element.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { continue }
            // No position yet (nothing fetched since assignment): everything from the low mark.
            let position = element.offset >= 0 ? element.offset : max(low, 0)
            lag[KafkaTopicPartition(topic: topic, partition: element.partition)] = max(0, high - position)
        }
        return lag
    }

    /// Leaves the group cleanly (commits stored offsets, hands the partitions over at once), then
    /// destroys the handle.
    ///
    /// The partitions are given up first, on the polling path (unsubscribe, then poll until the
    /// revoke has run): librdkafka 2.0.2 can leave `rd_kafka_assign` waiting for ever when the
    /// revoke callback runs inside `rd_kafka_consumer_close` during a rebalance (seen under load).
    /// Messages polled meanwhile are dropped unhandled; their offsets were never stored, so the
    /// next owner gets them.
    /// A consumer that assigned its partitions itself (`inGroup` false) just drops them.
    func closeConsumer(inGroup: Bool = true) {
        if !inGroup {
            _ = rd_kafka_assign(handle, nil)
        } else if let queue = consumerQueue, rd_kafka_unsubscribe(handle) == RD_KAFKA_RESP_ERR_NO_ERROR {
            var raw = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: 100)
            for _ in 0..<50 {
                var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
                let assigned = rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR ? Int(list?.pointee.cnt ?? 0) : 0
                if let list { rd_kafka_topic_partition_list_destroy(list) }
                if assigned == 0 { break }
                let count = raw.withUnsafeMutableBufferPointer { rd_kafka_consume_batch_queue(queue, 100, $0.baseAddress, 100) }
                for index in 0..<max(count, 0) { if let message = raw[index] { rd_kafka_message_destroy(message) } }
            }
        }
        let err = rd_kafka_consumer_close(handle)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("consumer close", metadata: ["kafka.error": .string(String(cString: rd_kafka_err2str(err)))])
        }
        destroy()
    }
}
