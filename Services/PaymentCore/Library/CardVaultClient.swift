import AsyncHTTPClient
import Foundation
import NIOCore
import PaywireModels
import PaywireRuntime
import PaywireStore

/// Takes a card from the gateway's in-memory vault for one confirm. The card is in this
/// process's memory only from here to the connector call. Only vault hosts on the allow-list
/// (`PAYWIRE_CARD_VAULT_HOSTS`) are ever called, so a command naming another host cannot make
/// payment-core sign a take for it. Gateway replicas whose addresses are not known in advance
/// (pods, containers of a scaled compose service) are allowed by network: `10.0.0.0/8:8090`
/// allows any IPv4 address in that network on that port, and nothing by name.
public struct CardVaultClient: Sendable {
    let http: HTTPClient
    let signer: CardVaultSigner
    /// `host:port` of the gateways' internal listeners.
    let allowedHosts: Set<String>
    /// `network/prefix:port` entries: (network, mask, port).
    let allowedNetworks: [(network: UInt32, mask: UInt32, port: Int)]
    /// Cards taken for confirms not yet written (see `take`).
    let held = HeldCards()

    public static let environmentKey = "PAYWIRE_CARD_VAULT_HOSTS"

    public init(http: HTTPClient, signer: CardVaultSigner, allowedHosts: Set<String>) {
        self.http = http
        self.signer = signer
        let entries = allowedHosts.map { $0.lowercased() }
        self.allowedHosts = Set(entries.filter { !$0.contains("/") })
        allowedNetworks = entries.compactMap(Self.network)
    }

    /// The allow-list from the environment (comma-separated `host:port` or `network/prefix:port`);
    /// the dev stack's gateway internal listener when unset. A malformed network entry stops the
    /// service (it would otherwise allow nothing, silently).
    public static func allowedHosts(_ environment: [String: String]) throws -> Set<String> {
        let text = environment[environmentKey].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1:8090,localhost:8090"
        let entries = Set(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty })
        for entry in entries where entry.contains("/") && network(entry) == nil {
            throw ServiceConfiguration.ConfigurationError(key: environmentKey, reason: "host:port or an IPv4 network/prefix:port (got \(entry))")
        }
        return entries
    }

    /// `a.b.c.d/prefix:port` as (network, mask, port).
    static func network(_ entry: String) -> (network: UInt32, mask: UInt32, port: Int)? {
        guard let colon = entry.lastIndex(of: ":"), let port = Int(entry[entry.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        let parts = entry[..<colon].split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = Int(parts[1]), (0...32).contains(prefix), let address = ipv4(parts[0]) else { return nil }
        let mask: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix)
        return (address & mask, mask, port)
    }

    static func ipv4(_ text: Substring) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard octet.count <= 3, octet.allSatisfy(\.isASCII), let byte = UInt8(octet) else { return nil }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    /// Whether a vault at `authority` (`host:port`, lower-cased) may be called.
    func allows(_ authority: String) -> Bool {
        if allowedHosts.contains(authority) { return true }
        guard !allowedNetworks.isEmpty, let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]),
              let address = Self.ipv4(authority[..<colon]) else { return false }
        return allowedNetworks.contains { $0.port == port && address & $0.mask == $0.network }
    }

    /// The card, or nil when the vault no longer holds it (taken, expired, gateway restarted).
    /// Throws `NotAllowed` for a vault reference that is not one of ours. The vault hands a card
    /// out once, so a taken card is held here until `release` (its confirm is written) or for
    /// `HeldCards.lifetime`: a confirm retried after a fault of ours (PostgreSQL restarting between
    /// the take and the write) still has its card.
    func take(_ reference: CardVaultReference) async throws -> CardDetails? {
        guard let url = URL(string: reference.url), url.scheme == "http" || url.scheme == "https",
              let authority = CardVaultSigner.authority(of: url), allows(authority),
              url.path == "/internal/card-vault/\(reference.token)/take", url.query == nil else {
            throw NotAllowed()
        }
        if let card = held.card(reference.token) { return card }
        var request = HTTPClientRequest(url: reference.url)
        request.method = .POST
        for (name, value) in signer.headers(method: "POST", host: authority, path: url.path, token: reference.token) {
            request.headers.add(name: name, value: value)
        }
        let response = try await http.execute(request, timeout: .seconds(2))
        let body = try await response.body.collect(upTo: 64 * 1024)
        switch response.status.code {
        case 200:
            let card = try PaywireJSON.decoder.decode(CardDetails.self, from: Data(buffer: body))
            held.hold(card, for: reference.token)
            return card
        case 404, 410: return nil
        default: throw VaultUnavailable(status: Int(response.status.code))
        }
    }

    /// The confirm that took this card is written (or refused for good): the card is not needed again.
    func release(_ reference: CardVaultReference) {
        held.release(reference.token)
    }

    struct VaultUnavailable: TransientFault, CustomStringConvertible {
        var status: Int
        var description: String { "card vault answered \(status)" }
    }

    /// A vault URL outside the allow-list (or not a take URL): never called.
    struct NotAllowed: Error, CustomStringConvertible {
        var description: String { "card vault host not on PAYWIRE_CARD_VAULT_HOSTS" }
    }
}
