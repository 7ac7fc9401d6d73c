import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import PaywireRuntime

/// The HTTP clients deliveries go out on. With the private-network guard on (the production
/// default) a host name is resolved here, every address it resolves to is checked, and the request
/// connects to the address that was checked (a client pinned to it, TLS still verified against the
/// name): a name that resolves to a private address, or starts to, is never reached.
final class WebhookHTTPClients: Sendable {
    struct Blocked: Error, CustomStringConvertible {
        let description: String
    }

    struct Pinned: Sendable {
        var address: String
        var client: HTTPClient
        var resolvedAt: ContinuousClock.Instant
    }

    let guardPrivateNetworks: Bool
    let requestTimeout: Duration
    let logger: Logger
    /// How long a checked resolution is used before the name is resolved and checked again.
    let resolutionLifetime: Duration = .seconds(60)
    private let shared: HTTPClient
    private let pinned = NIOLockedValueBox<[String: Pinned]>([:])

    init(guardPrivateNetworks: Bool, requestTimeout: Duration, logger: Logger) {
        self.guardPrivateNetworks = guardPrivateNetworks
        self.requestTimeout = requestTimeout
        self.logger = logger
        shared = HTTPClient(eventLoopGroupProvider: .singleton, configuration: Self.configuration(requestTimeout: requestTimeout, dnsOverride: [:]))
    }

    static func configuration(requestTimeout: Duration, dnsOverride: [String: String]) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        // A redirect is a failed delivery: following it would send signed data somewhere the
        // merchant did not configure (and past the address check).
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(Int64(requestTimeout.components.seconds)))
        configuration.dnsOverride = dnsOverride
        return configuration
    }

    /// The client to send to `url` with, or `Blocked` when the guard refuses its address.
    func client(for url: String) async throws -> HTTPClient {
        guard guardPrivateNetworks else { return shared }
        guard let host = URLComponents(string: url)?.host, !host.isEmpty else { throw Blocked(description: "the URL has no host") }
        if let problem = NetworkAddressPolicy.refusal(forLiteral: host) { throw Blocked(description: "\(host) is \(problem)") }
        if NetworkAddressPolicy.ipv4(host) != nil || NetworkAddressPolicy.ipv6(host) != nil { return shared }
        let now = ContinuousClock.now
        if let current = pinned.withLockedValue({ $0[host] }), now - current.resolvedAt < resolutionLifetime {
            return current.client
        }
        let addresses = try await NetworkAddressPolicy.resolve(host)
        for address in addresses {
            if let problem = NetworkAddressPolicy.refusal(forLiteral: address) {
                throw Blocked(description: "\(host) resolves to \(address), \(problem)")
            }
        }
        guard let address = addresses.first else { throw Blocked(description: "\(host) resolves to no address") }
        let (client, retired) = pinned.withLockedValue { clients -> (HTTPClient, HTTPClient?) in
            if let current = clients[host], current.address == address {
                clients[host]?.resolvedAt = now
                return (current.client, nil)
            }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: Self.configuration(requestTimeout: requestTimeout, dnsOverride: [host: address]))
            let previous = clients[host]?.client
            clients[host] = Pinned(address: address, client: client, resolvedAt: now)
            return (client, previous)
        }
        if let retired {
            // Requests still running on the old address finish first.
            let grace = requestTimeout + .seconds(5)
            Task {
                try? await Task.sleep(for: grace)
                try? await retired.shutdown()
            }
        }
        return client
    }

    func shutdown() async {
        let clients = pinned.withLockedValue { clients -> [HTTPClient] in
            defer { clients = [:] }
            return clients.values.map(\.client)
        }
        for client in clients { try? await client.shutdown() }
        try? await shared.shutdown()
    }
}
