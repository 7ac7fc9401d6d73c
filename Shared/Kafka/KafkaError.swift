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

    public var description: String { "Kafka \(kind.rawValue) error \(codeName) (\(code)): \(message)" }

    static let shutdown = KafkaError(kind: .shutdown, message: "the client is shutting down")
}
