import CRdKafka
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Owns one `rd_kafka_t` and the callbacks librdkafka makes into Swift. Every C call of this
/// module is made here (this file and its `+Consumer`, `+Producer` and `+Admin` extensions); the
/// public types never see a pointer or a librdkafka type.
final class RDKafkaClient: @unchecked Sendable {
    enum Kind { case producer, consumer }

    /// What librdkafka's callbacks reach. Retained for the handle's lifetime through the conf
    /// opaque and released after `rd_kafka_destroy`, when no callback can run any more.
    final class CallbackContext: @unchecked Sendable {
        let logger: Logger
        let onDelivery: (@Sendable (UnsafeMutableRawPointer?, Result<KafkaDeliveryReport, KafkaError>) -> Void)?
        let onRebalance: (@Sendable (KafkaRebalanceEvent) -> Void)?

        init(
            logger: Logger,
            onDelivery: (@Sendable (UnsafeMutableRawPointer?, Result<KafkaDeliveryReport, KafkaError>) -> Void)?,
            onRebalance: (@Sendable (KafkaRebalanceEvent) -> Void)?
        ) {
            self.logger = logger
            self.onDelivery = onDelivery
            self.onRebalance = onRebalance
        }
    }

    let handle: OpaquePointer
    let kind: Kind
    private let context: Unmanaged<CallbackContext>
    private var destroyed = false
    /// A consumer's queue, into which the main queue (logs, errors, rebalances) is routed too,
    /// so one poll serves them all.
    let consumerQueue: OpaquePointer?
    /// A producer's topic handles by name: producing by name would make librdkafka look the topic
    /// up (and take its locks) for every message.
    let topicHandles = NIOLockedValueBox<[String: UnsafeSendable<OpaquePointer>]>([:])

    static func make(
        kind: Kind,
        properties: [String: String],
        logger: Logger,
        onDelivery: (@Sendable (UnsafeMutableRawPointer?, Result<KafkaDeliveryReport, KafkaError>) -> Void)? = nil,
        onRebalance: (@Sendable (KafkaRebalanceEvent) -> Void)? = nil
    ) throws -> RDKafkaClient {
        let conf = try RDKafkaConfig.make(properties)
        let context = Unmanaged.passRetained(
            CallbackContext(logger: logger, onDelivery: onDelivery, onRebalance: onRebalance)
        )
        rd_kafka_conf_set_opaque(conf, context.toOpaque())
        rd_kafka_conf_set_log_cb(conf) { rk, level, facility, buffer in
            guard let rk, let opaque = rd_kafka_opaque(rk) else { return }
            let context = Unmanaged<CallbackContext>.fromOpaque(opaque).takeUnretainedValue()
            let text = buffer.map { String(cString: $0) } ?? ""
            let facilityName = facility.map { String(cString: $0) } ?? ""
            context.logger.log(
                level: RDKafkaClient.logLevel(syslog: level),
                "\(text)",
                metadata: ["kafka.facility": .string(facilityName)],
                source: "librdkafka"
            )
        }
        rd_kafka_conf_set_error_cb(conf) { rk, err, reason, opaque in
            guard let opaque else { return }
            let context = Unmanaged<CallbackContext>.fromOpaque(opaque).takeUnretainedValue()
            let code = rd_kafka_resp_err_t(rawValue: err)
            let error = KafkaError(kind: code == RD_KAFKA_RESP_ERR__FATAL ? .fatal : .consume, rdError: code)
            context.logger.warning(
                "librdkafka reported an error",
                metadata: ["kafka.error": .string(error.description), "kafka.reason": .string(reason.map { String(cString: $0) } ?? "")],
                source: "librdkafka"
            )
        }
        if onDelivery != nil {
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let message, let opaque else { return }
                let context = Unmanaged<CallbackContext>.fromOpaque(opaque).takeUnretainedValue()
                let m = message.pointee
                context.onDelivery?(m._private, m.err == RD_KAFKA_RESP_ERR_NO_ERROR
                    ? .success(KafkaDeliveryReport(partition: m.partition, offset: m.offset))
                    : .failure(KafkaError(kind: .delivery, rdError: m.err)))
            }
        }
        if kind == .consumer {
            // Commits (background, asked, on revoke) otherwise fail silently: a group whose
            // committed offsets stop moving would give no sign of why.
            rd_kafka_conf_set_offset_commit_cb(conf) { _, err, offsets, opaque in
                guard let opaque else { return }
                let context = Unmanaged<CallbackContext>.fromOpaque(opaque).takeUnretainedValue()
                RDKafkaClient.reportCommit(err, offsets, logger: context.logger)
            }
        }
        if onRebalance != nil {
            rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
                guard let rk, let opaque else { return }
                RDKafkaClient.rebalance(rk, err, partitions, context: Unmanaged<CallbackContext>.fromOpaque(opaque).takeUnretainedValue())
            }
        }

        var errorText = [CChar](repeating: 0, count: 512)
        let type = kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER
        guard let handle = rd_kafka_new(type, conf, &errorText, errorText.count) else {
            // rd_kafka_new frees the conf only on success.
            rd_kafka_conf_destroy(conf)
            context.release()
            throw KafkaError(kind: .clientCreation, message: String(cString: errorText))
        }
        var consumerQueue: OpaquePointer?
        if kind == .consumer {
            rd_kafka_poll_set_consumer(handle)
            consumerQueue = rd_kafka_queue_get_consumer(handle)
        }
        return RDKafkaClient(handle: handle, kind: kind, context: context, consumerQueue: consumerQueue)
    }

    private init(handle: OpaquePointer, kind: Kind, context: Unmanaged<CallbackContext>, consumerQueue: OpaquePointer?) {
        self.handle = handle
        self.kind = kind
        self.context = context
        self.consumerQueue = consumerQueue
    }

    /// Called on the polling thread: takes or gives up the partitions (incrementally under the
    /// cooperative protocol), then tells the consumer.
    private static func rebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, context: CallbackContext) {
        let list = partitionList(partitions)
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, partitions) { rd_kafka_error_destroy(error) }
            } else {
                rd_kafka_assign(rk, partitions)
            }
            context.logger.info("partitions assigned", metadata: ["kafka.partitions": .string(list.map(\.description).joined(separator: ","))])
            context.onRebalance?(.assigned(list))
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            // Commit what was stored before giving the partitions away, so the next owner starts
            // after the last message whose effects are committed.
            rd_kafka_commit(rk, nil, 0)
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, partitions) { rd_kafka_error_destroy(error) }
            } else {
                rd_kafka_assign(rk, nil)
            }
            context.logger.info("partitions revoked", metadata: ["kafka.partitions": .string(list.map(\.description).joined(separator: ","))])
            context.onRebalance?(.revoked(list))
        default:
            context.logger.error("rebalance error", metadata: ["kafka.error": .string(String(cString: rd_kafka_err2str(err)))])
            rd_kafka_assign(rk, nil)
        }
    }

    /// Logs a commit that failed, as a whole or for some partitions; a commit with nothing new
    /// to send (`_NO_OFFSET`) is not a failure.
    static func reportCommit(_ err: rd_kafka_resp_err_t, _ offsets: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, logger: Logger) {
        var failed: [String] = []
        var codes: Set<Int32> = []
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET { codes.insert(err.rawValue) }
        if let offsets {
            for index in 0..<Int(offsets.pointee.cnt) where offsets.pointee.elems[index].err != RD_KAFKA_RESP_ERR_NO_ERROR {
                let element = offsets.pointee.elems[index]
                codes.insert(element.err.rawValue)
                failed.append("\(String(cString: element.topic))[\(element.partition)]@\(element.offset): \(String(cString: rd_kafka_err2str(element.err)))")
            }
        }
        guard !codes.isEmpty else { return }
        // A commit refused because the group is rebalancing is routine; anything else is not.
        let routine: Set<Int32> = [RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS.rawValue, RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION.rawValue, RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID.rawValue]
        logger.log(level: codes.isSubset(of: routine) ? .info : .warning, "offset commit failed; the next commit sends it again", metadata: [
            "kafka.error": .string(String(cString: rd_kafka_err2str(err))),
            "kafka.partitions": .string(failed.joined(separator: ", ")),
        ])
    }

    static func partitionList(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) -> [KafkaTopicPartition] {
        guard let list else { return [] }
        return (0..<Int(list.pointee.cnt)).map { index in
            let element = list.pointee.elems[index]
            return KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)
        }
    }

    var logger: Logger { context.takeUnretainedValue().logger }

    /// Blocking; call from a thread of our own, never from the cooperative pool.
    func destroy(skipConsumerClose: Bool = false) {
        guard !destroyed else { return }
        destroyed = true
        if let consumerQueue { rd_kafka_queue_destroy(consumerQueue) }
        let topics = topicHandles.withLockedValue { handles in
            defer { handles.removeAll() }
            return Array(handles.values)
        }
        for topic in topics { rd_kafka_topic_destroy(topic.value) }
        if skipConsumerClose {
            rd_kafka_destroy_flags(handle, Int32(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
        } else {
            rd_kafka_destroy(handle)
        }
        context.release()
    }

    /// Broker metadata for all topics (or one), used by readiness checks and topic verification.
    func topicPartitionCounts(timeoutMilliseconds: Int32) throws -> [String: Int] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle, 1, nil, &metadata, timeoutMilliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError(kind: .metadata, rdError: err, context: "metadata request")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var counts: [String: Int] = [:]
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let topic = metadata.pointee.topics[index]
            guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            counts[String(cString: topic.topic)] = Int(topic.partition_cnt)
        }
        return counts
    }

    static func logLevel(syslog: Int32) -> Logger.Level {
        switch syslog {
        case ...3: return .error
        case 4: return .warning
        case 5, 6: return .info
        default: return .debug
        }
    }
}

enum RDKafkaConfig {
    static func make(_ properties: [String: String]) throws -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(kind: .configuration, message: "rd_kafka_conf_new failed")
        }
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            if rd_kafka_conf_set(conf, key, value, &errorText, errorText.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(kind: .configuration, message: "\(key): \(String(cString: errorText))")
            }
        }
        return conf
    }
}

/// A thread of our own for librdkafka calls that block, so they never stall Swift's cooperative
/// pool. Each call resumes its continuation exactly once.
final class RDKafkaBlockingExecutor: Sendable {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body() })
            }
        }
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body()) }
        }
    }
}

/// For C handles confined to one executor thread by construction.
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension KafkaError {
    init(kind: Kind, rdError: rd_kafka_resp_err_t, context: String? = nil) {
        let text = String(cString: rd_kafka_err2str(rdError))
        self.init(kind: kind, code: rdError.rawValue, message: context.map { "\($0): \(text)" } ?? text)
    }

    /// librdkafka's symbolic name for the code, e.g. `_MSG_TIMED_OUT`.
    public var codeName: String {
        String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: code)))
    }

    /// A refusal of this one message that retrying cannot change (too large, an invalid or
    /// unknown topic, not authorised): the message must be set aside, not retried.
    public var isPermanentForMessage: Bool {
        let permanent: [rd_kafka_resp_err_t] = [
            RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
            RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR__INVALID_ARG,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        ]
        return permanent.contains { $0.rawValue == code }
    }

    /// The topic already exists (CreateTopics).
    var isTopicAlreadyExists: Bool { code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS.rawValue }

    static func unknownTopic(_ topic: String) -> KafkaError {
        KafkaError(kind: .metadata, code: RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC.rawValue, message: "unknown topic \(topic)")
    }
}
