import AsyncHTTPClient
import Foundation
import NIOCore
import PaywireModels
import PaywireRuntime
import PaywireStore

/// Takes a card from the gateway's in-memory vault for one confirm. The card is in this
/// process's memory only from here to the connector call. Only vault hosts on the allow-list
/// (`PAYWIRE_CARD_VAULT_HOSTS`) are ever called, so a command naming another host cannot make
/// payment-core sign a take for it.
public struct CardVaultClient: Sendable {
    let http: HTTPClient
    let signer: CardVaultSigner
    /// `host:port` of the gateways' internal listeners.
    let allowedHosts: Set<String>

    public static let environmentKey = "PAYWIRE_CARD_VAULT_HOSTS"

    public init(http: HTTPClient, signer: CardVaultSigner, allowedHosts: Set<String>) {
        self.http = http
        self.signer = signer
        self.allowedHosts = Set(allowedHosts.map { $0.lowercased() })
    }

    /// The allow-list from the environment (comma-separated `host:port`); the dev stack's
    /// gateway internal listener when unset.
    public static func allowedHosts(_ environment: [String: String]) -> Set<String> {
        let text = environment[environmentKey].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1:8090,localhost:8090"
        return Set(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty })
    }

    /// The card, or nil when the vault no longer holds it (taken, expired, gateway restarted).
    /// Throws `NotAllowed` for a vault reference that is not one of ours.
    func take(_ reference: CardVaultReference) async throws -> CardDetails? {
        guard let url = URL(string: reference.url), url.scheme == "http" || url.scheme == "https",
              let authority = CardVaultSigner.authority(of: url), allowedHosts.contains(authority),
              url.path == "/internal/card-vault/\(reference.token)/take", url.query == nil else {
            throw NotAllowed()
        }
        var request = HTTPClientRequest(url: reference.url)
        request.method = .POST
        for (name, value) in signer.headers(method: "POST", host: authority, path: url.path, token: reference.token) {
            request.headers.add(name: name, value: value)
        }
        let response = try await http.execute(request, timeout: .seconds(2))
        let body = try await response.body.collect(upTo: 64 * 1024)
        switch response.status.code {
        case 200: return try PaywireJSON.decoder.decode(CardDetails.self, from: Data(buffer: body))
        case 404, 410: return nil
        default: throw VaultUnavailable(status: Int(response.status.code))
        }
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
