import CRdKafka
import Foundation
import Logging

/// Owns one `rd_kafka_t` and the callbacks librdkafka makes into Swift. Everything C-facing in
/// this module goes through here; the public types never see a pointer.
final class RDKafkaClient: @unchecked Sendable {
    enum Kind { case producer, consumer }

    /// What librdkafka's callbacks reach. Retained for the handle's lifetime through the conf
    /// opaque and released after `rd_kafka_destroy`, when no callback can run any more.
    final class CallbackContext: @unchecked Sendable {
        let logger: Logger
        let onDelivery: (@Sendable (UnsafeMutableRawPointer?, rd_kafka_resp_err_t, Int32, Int64) -> Void)?
        let onRebalance: (@Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) -> Void)?

        init(
            logger: Logger,
            onDelivery: (@Sendable (UnsafeMutableRawPointer?, rd_kafka_resp_err_t, Int32, Int64) -> Void)?,
            onRebalance: (@Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) -> Void)?
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

    static func make(
        kind: Kind,
        properties: [String: String],
        logger: Logger,
        onDelivery: (@Sendable (UnsafeMutableRawPointer?, rd_kafka_resp_err_t, Int32, Int64) -> Void)? = nil,
        onRebalance: (@Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) -> Void)? = nil
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
                context.onDelivery?(m._private, m.err, m.partition, m.offset)
            }
        }
        if onRebalance != nil {
            rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
                guard let rk, let opaque else { return }
                let context = Unmanaged<CallbackContext>.fromOpaque(opaque).takeUnretainedValue()
                context.onRebalance?(rk, err, partitions)
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
        return RDKafkaClient(handle: handle, kind: kind, context: context)
    }

    private init(handle: OpaquePointer, kind: Kind, context: Unmanaged<CallbackContext>) {
        self.handle = handle
        self.kind = kind
        self.context = context
    }

    var logger: Logger { context.takeUnretainedValue().logger }

    /// Blocking; call from a thread of our own, never from the cooperative pool.
    func destroy(skipConsumerClose: Bool = false) {
        guard !destroyed else { return }
        destroyed = true
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
