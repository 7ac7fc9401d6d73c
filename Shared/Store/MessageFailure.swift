import PostgresNIO

/// Whether retrying a failed message can help. Only faults of the moment (connection lost,
/// timeouts, a server shutting down, serialization conflicts) are worth retrying without end;
/// a message whose data PostgreSQL refuses will be refused again.
public enum MessageFailure: Sendable, Equatable {
    /// Retry with backoff for as long as it takes.
    case transient
    /// Retrying cannot cure it: dead-letter after a bounded number of tries. `reason` is a short
    /// category for metrics and logs; it never carries the message's data.
    case poison(reason: String, detail: String)

    public static func classify(_ error: any Error) -> MessageFailure {
        if let wrapped = error as? PostgresTransactionError {
            if let inner = wrapped.closureError ?? wrapped.commitError ?? wrapped.beginError { return classify(inner) }
            return .transient
        }
        if let error = error as? PSQLError, error.code == .server, let state = error.serverInfo?[.sqlState] {
            return classify(sqlState: state)
        }
        if error is DecodingError { return .poison(reason: "undecodable", detail: "the message could not be decoded") }
        return .transient
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

    /// By SQLSTATE class (PostgreSQL appendix A).
    public static func classify(sqlState state: String) -> MessageFailure {
        switch state.prefix(2) {
        case "22": return .poison(reason: "data_exception", detail: "PostgreSQL refused the data (SQLSTATE \(state))")
        case "23": return .poison(reason: "integrity_violation", detail: "PostgreSQL integrity constraint (SQLSTATE \(state))")
        case "42": return .poison(reason: "statement_error", detail: "PostgreSQL could not run the statement (SQLSTATE \(state))")
        case "54": return .poison(reason: "program_limit", detail: "PostgreSQL limit exceeded (SQLSTATE \(state))")
        default: return .transient
        }
    }
}
