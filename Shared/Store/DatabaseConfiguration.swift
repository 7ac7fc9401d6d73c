import Foundation
import PostgresNIO

/// Connection settings parsed from a `postgres://user:password@host:port/database` URL.
public struct DatabaseConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var maxConnections: Int

    public init(host: String, port: Int, username: String, password: String?, database: String, maxConnections: Int = 10) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.maxConnections = maxConnections
    }

    public struct InvalidURL: Error, CustomStringConvertible {
        public let reason: String
        // The URL itself is never echoed: it usually carries a password.
        public var description: String { "DATABASE_URL is not a usable postgres:// URL: \(reason)" }
    }

    public init(url: String, maxConnections: Int = 10) throws {
        guard let components = URLComponents(string: url) else { throw InvalidURL(reason: "cannot be parsed") }
        guard components.scheme == "postgres" || components.scheme == "postgresql" else {
            throw InvalidURL(reason: "scheme must be postgres or postgresql")
        }
        guard let host = components.host, !host.isEmpty else { throw InvalidURL(reason: "no host") }
        guard let user = components.user, !user.isEmpty else { throw InvalidURL(reason: "no user") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw InvalidURL(reason: "no database name") }
        self.init(
            host: host,
            port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database,
            maxConnections: maxConnections
        )
    }

    public var clientConfiguration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: .disable
        )
        configuration.options.maximumConnections = maxConnections
        configuration.options.minimumConnections = 1
        return configuration
    }
}
