import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import PaywireRuntime

/// The HTTP clients deliveries go out on: one per endpoint, never one per host. AsyncHTTPClient
/// pools connections per host (8 by default), so with one client per host a slow endpoint could
/// hold every connection a shared receiver host has — a no-code platform or a webhook relay that
/// many merchants point at — and another merchant's request would wait for a connection and fail
/// with a pool timeout. Each endpoint's client holds as many connections as the endpoint may have
/// requests in flight, so its requests never wait for a connection; what a whole host gets is
/// bounded by the worker's per-host ceiling (`DeliverySettings.perHost`), split among its endpoints.
///
/// With the private-network guard on (the production default) a host name is resolved here, every
/// address it resolves to is checked, and the request connects to the address that was checked (a
/// client pinned to it, TLS still verified against the name): a name that resolves to a private
/// address, or starts to, is never reached. A client unused for `idleLifetime` is closed.
final class WebhookHTTPClients: Sendable {
    struct Blocked: Error, CustomStringConvertible {
        let description: String
    }

    struct Entry: Sendable {
        var client: HTTPClient
        /// The checked address a host name is pinned to (nil: literal address or guard off).
        var pinnedAddress: String?
        var lastUsed: ContinuousClock.Instant
    }

    struct Resolution: Sendable {
        var address: String
        var at: ContinuousClock.Instant
    }

    let guardPrivateNetworks: Bool
    let requestTimeout: Duration
    /// Connections one endpoint's client may hold: its in-flight limit.
    let connectionsPerEndpoint: Int
    let logger: Logger
    /// How long a checked resolution is used before the name is resolved and checked again.
    let resolutionLifetime: Duration = .seconds(60)
    /// A client no request used for this long is closed (its endpoint may be gone for good).
    let idleLifetime: Duration
    private let clients = NIOLockedValueBox<[String: Entry]>([:])
    private let resolutions = NIOLockedValueBox<[String: Resolution]>([:])

    init(guardPrivateNetworks: Bool, requestTimeout: Duration, connectionsPerEndpoint: Int, idleLifetime: Duration = .seconds(300), logger: Logger) {
        self.guardPrivateNetworks = guardPrivateNetworks
        self.requestTimeout = requestTimeout
        self.connectionsPerEndpoint = connectionsPerEndpoint
        self.idleLifetime = idleLifetime
        self.logger = logger
    }

    static func configuration(requestTimeout: Duration, connections: Int, dnsOverride: [String: String]) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        // A redirect is a failed delivery: following it would send signed data somewhere the
        // merchant did not configure (and past the address check).
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(Int64(requestTimeout.components.seconds)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections
        configuration.dnsOverride = dnsOverride
        return configuration
    }

    /// How many endpoint clients are open now (a gauge, and for tests).
    var openClients: Int { clients.withLockedValue { $0.count } }

    /// The client to send to `url` for the endpoint `endpointKey` with, or `Blocked` when the guard
    /// refuses its address.
    func client(for url: String, endpointKey: String) async throws -> HTTPClient {
        let pinnedAddress = try await checkedAddress(for: url)
        let now = ContinuousClock.now
        let (client, retired) = clients.withLockedValue { clients -> (HTTPClient, HTTPClient?) in
            if let current = clients[endpointKey], current.pinnedAddress == pinnedAddress {
                clients[endpointKey]?.lastUsed = now
                return (current.client, nil)
            }
            var override: [String: String] = [:]
            if let pinnedAddress, let host = URLComponents(string: url)?.host { override[host] = pinnedAddress }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: Self.configuration(
                requestTimeout: requestTimeout, connections: connectionsPerEndpoint, dnsOverride: override))
            let previous = clients[endpointKey]?.client
            clients[endpointKey] = Entry(client: client, pinnedAddress: pinnedAddress, lastUsed: now)
            return (client, previous)
        }
        if let retired { retire(retired) }
        return client
    }

    /// The address a host name was resolved and checked to (nil where nothing is pinned), or
    /// `Blocked`.
    private func checkedAddress(for url: String) async throws -> String? {
        guard guardPrivateNetworks else { return nil }
        guard let host = URLComponents(string: url)?.host, !host.isEmpty else { throw Blocked(description: "the URL has no host") }
        if let problem = NetworkAddressPolicy.refusal(forLiteral: host) { throw Blocked(description: "\(host) is \(problem)") }
        if NetworkAddressPolicy.literal(host) != nil { return nil }
        let now = ContinuousClock.now
        if let known = resolutions.withLockedValue({ $0[host] }), now - known.at < resolutionLifetime { return known.address }
        let addresses = try await NetworkAddressPolicy.resolve(host)
        for address in addresses {
            if let problem = NetworkAddressPolicy.refusal(forLiteral: address) {
                throw Blocked(description: "\(host) resolves to \(address), \(problem)")
            }
        }
        guard let address = addresses.first else { throw Blocked(description: "\(host) resolves to no address") }
        resolutions.withLockedValue { $0[host] = Resolution(address: address, at: now) }
        return address
    }

    /// Requests still running on a replaced client finish first.
    private func retire(_ client: HTTPClient) {
        let grace = requestTimeout + .seconds(5)
        Task {
            try? await Task.sleep(for: grace)
            try? await client.shutdown()
        }
    }

    /// Closes the clients no request used for `idleLifetime`, and forgets old resolutions.
    /// `inUse` names endpoints with requests running now, which are kept whatever their age.
    func closeIdle(inUse: Set<String>, now: ContinuousClock.Instant = .now) async {
        let idle = clients.withLockedValue { clients -> [HTTPClient] in
            let stale = clients.filter { !inUse.contains($0.key) && now - $0.value.lastUsed >= idleLifetime }
            for key in stale.keys { clients.removeValue(forKey: key) }
            return stale.values.map(\.client)
        }
        resolutions.withLockedValue { $0 = $0.filter { now - $1.at < resolutionLifetime } }
        for client in idle { try? await client.shutdown() }
        if !idle.isEmpty { logger.debug("idle endpoint clients closed", metadata: ["closed": .stringConvertible(idle.count)]) }
    }

    func shutdown() async {
        let all = clients.withLockedValue { clients -> [HTTPClient] in
            defer { clients = [:] }
            return clients.values.map(\.client)
        }
        for client in all { try? await client.shutdown() }
    }
}
