import CRdKafka

/// A librdkafka failure as a Swift error. `code` is librdkafka's `rd_kafka_resp_err_t` value so
/// callers can branch on it; `description` is librdkafka's own text, which never carries payloads.
public struct KafkaError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        case configuration
        case clientCreation
        case produce
        case delivery
        case consume
        case offsetStore
        case commit
        case topicAdmin
        case metadata
        case shutdown
        case fatal
    }

    public let kind: Kind
    /// librdkafka's numeric error code (`rd_kafka_resp_err_t`), 0 when the failure is ours.
    public let code: Int32
    public let message: String

    public init(kind: Kind, code: Int32 = 0, message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

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

    public var description: String { "Kafka \(kind.rawValue) error \(codeName) (\(code)): \(message)" }

    static let shutdown = KafkaError(kind: .shutdown, message: "the client is shutting down")
}
