import Foundation
import NIOSSL
import PostgresNIO

/// Connection settings parsed from a `postgres://user:password@host:port/database` URL, with
/// libpq's `sslmode` (disable, prefer, require, verify-ca, verify-full) and `sslrootcert`.
public struct DatabaseConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var maxConnections: Int
    public var sslMode: SSLMode
    /// PEM file of the CA(s) that sign the server's certificate (verify-ca, verify-full); the
    /// system's trust store when absent.
    public var sslRootCertificate: String?

    /// libpq's names and meanings.
    public enum SSLMode: String, Sendable, Equatable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public init(host: String, port: Int, username: String, password: String?, database: String, maxConnections: Int = 10,
                sslMode: SSLMode = .disable, sslRootCertificate: String? = nil) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.maxConnections = maxConnections
        self.sslMode = sslMode
        self.sslRootCertificate = sslRootCertificate
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
        var sslMode = SSLMode.disable
        var rootCertificate: String?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, let mode = SSLMode(rawValue: value) else {
                    throw InvalidURL(reason: "sslmode must be one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                sslMode = mode
            case "sslrootcert":
                guard let path = item.value, FileManager.default.isReadableFile(atPath: path) else { throw InvalidURL(reason: "sslrootcert is not a readable file") }
                rootCertificate = path
            default:
                throw InvalidURL(reason: "unknown parameter \(item.name) (sslmode and sslrootcert are understood)")
            }
        }
        self.init(
            host: host,
            port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database,
            maxConnections: maxConnections,
            sslMode: sslMode,
            sslRootCertificate: rootCertificate
        )
    }

    /// What `sslMode` checks, as libpq means it: require encrypts without checking the
    /// certificate, verify-ca checks it against the CA, verify-full the host name too.
    public var tlsConfiguration: TLSConfiguration? {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let sslRootCertificate { tls.trustRoots = .file(sslRootCertificate) }
        switch sslMode {
        case .disable: return nil
        case .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        return tls
    }

    /// The TLS PostgresNIO uses (prefer falls back to plain text, as libpq's does).
    public func tls() -> PostgresClient.Configuration.TLS {
        guard let tls = tlsConfiguration else { return .disable }
        return sslMode == .prefer ? .prefer(tls) : .require(tls)
    }

    public var clientConfiguration: PostgresClient.Configuration {
        get throws {
            var configuration = PostgresClient.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: tls()
            )
            configuration.options.maximumConnections = maxConnections
            configuration.options.minimumConnections = 1
            return configuration
        }
    }
}
