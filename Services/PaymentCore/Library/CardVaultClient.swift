import AsyncHTTPClient
import Foundation
import NIOCore
import PaywireModels
import PaywireRuntime

/// Takes a card from the gateway's in-memory vault for one confirm. The card is in this
/// process's memory only from here to the connector call.
public struct CardVaultClient: Sendable {
    let http: HTTPClient
    let signer: InternalRequestSigner

    public init(http: HTTPClient, signer: InternalRequestSigner) {
        self.http = http
        self.signer = signer
    }

    /// The card, or nil when the vault no longer holds it (taken, expired, gateway restarted).
    func take(_ reference: CardVaultReference) async throws -> CardDetails? {
        var request = HTTPClientRequest(url: reference.url)
        request.method = .POST
        request.headers.add(name: InternalRequestSigner.header, value: signer.signature(for: reference.token))
        let response = try await http.execute(request, timeout: .seconds(2))
        let body = try await response.body.collect(upTo: 64 * 1024)
        switch response.status.code {
        case 200: return try PaywireJSON.decoder.decode(CardDetails.self, from: Data(buffer: body))
        case 404, 410: return nil
        default: throw VaultUnavailable(status: Int(response.status.code))
        }
    }

    struct VaultUnavailable: Error, CustomStringConvertible {
        var status: Int
        var description: String { "card vault answered \(status)" }
    }
}
