import NIOCore
import PaywireKafka
import PostgresNIO

/// An error that says of itself that it will pass (a dependency unavailable for now): a message
/// that meets it is retried with backoff for as long as it takes, never dead-lettered.
public protocol TransientFault: Error {}

/// Whether retrying a failed message can help. Only faults known to be of the moment (connection
/// lost, timeouts, a server shutting down, serialization conflicts, the broker unavailable) are
/// worth retrying without end; a message whose data PostgreSQL refuses will be refused again; and
/// an error nothing here knows is tried a bounded number of times, then dead-lettered, so one
/// message can never hold its partition for good.
public enum MessageFailure: Sendable, Equatable {
    /// Retry with backoff for as long as it takes.
    case transient
    /// Retrying cannot cure it: dead-letter after a bounded number of tries. `reason` is a short
    /// category for metrics and logs; it never carries the message's data.
    case poison(reason: String, detail: String)
    /// Nothing says whether it will pass: retried up to `unknownTries`, then dead-lettered.
    case unknown(detail: String)

    public static func classify(_ error: any Error) -> MessageFailure {
        if let wrapped = error as? PostgresTransactionError {
            if let inner = wrapped.closureError ?? wrapped.commitError ?? wrapped.beginError { return classify(inner) }
            return .transient
        }
        if let error = error as? PSQLError {
            if error.code == .server, let state = error.serverInfo?[.sqlState] { return classify(sqlState: state) }
            // Not the server's answer: the connection, the pool, a timeout, TLS.
            return .transient
        }
        if error is DecodingError { return .poison(reason: "undecodable", detail: "the message could not be decoded") }
        if error is any TransientFault || error is CancellationError || error is KafkaError || error is ChannelError || error is IOError {
            return .transient
        }
        return .unknown(detail: "unclassified error \(type(of: error)): \(loggable(error))")
    }

    /// A database error as a log line may show it: its SQLSTATE or kind, never the data (a
    /// PSQLError's own description says nothing, its reflection may carry values).
    public static func loggable(_ error: any Error) -> String {
        if let wrapped = error as? PostgresTransactionError {
            if let inner = wrapped.closureError ?? wrapped.commitError ?? wrapped.beginError { return loggable(inner) }
            return "PostgreSQL transaction error"
        }
        if let error = error as? PSQLError {
            if let state = error.serverInfo?[.sqlState] { return "PostgreSQL SQLSTATE \(state)" }
            return "PostgreSQL \(error.code)"
        }
        return String(describing: error)
    }

    /// By SQLSTATE class (PostgreSQL appendix A): connection (08), rollback (40: serialization,
    /// deadlock), resources (53), operator intervention (57: shutdown), system (58) and a lock
    /// not available (55P03) pass; data (22), integrity (23), statement (42) and limits (54) do
    /// not; anything else is not known either way.
    public static func classify(sqlState state: String) -> MessageFailure {
        if state == "55P03" { return .transient }
        switch state.prefix(2) {
        case "08", "40", "53", "57", "58": return .transient
        case "22": return .poison(reason: "data_exception", detail: "PostgreSQL refused the data (SQLSTATE \(state))")
        case "23": return .poison(reason: "integrity_violation", detail: "PostgreSQL integrity constraint (SQLSTATE \(state))")
        case "42": return .poison(reason: "statement_error", detail: "PostgreSQL could not run the statement (SQLSTATE \(state))")
        case "54": return .poison(reason: "program_limit", detail: "PostgreSQL limit exceeded (SQLSTATE \(state))")
        default: return .unknown(detail: "PostgreSQL SQLSTATE \(state)")
        }
    }
}
