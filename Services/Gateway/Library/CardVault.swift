import Foundation
import Hummingbird
import NIOCore
import PaywireModels
import PaywireRuntime
import Synchronization

/// Card data between the client's request and payment-core's connector call, in this process's
/// memory only. Commands on Kafka carry a one-time token instead; payment-core takes the card
/// with a request signed by the internal key. A card is handed out once and forgotten after
/// `lifetime`, and a gateway restart forgets them all: the client then confirms again.
final class CardVault: Sendable {
    struct Entry {
        var card: CardDetails
        var expires: ContinuousClock.Instant
    }

    struct Contents {
        var entries: [String: Entry] = [:]
        var nextSweep: ContinuousClock.Instant = .now
    }

    private let contents = Mutex(Contents())
    let lifetime: Duration
    let baseURL: String
    let signer: InternalRequestSigner

    init(baseURL: String, signer: InternalRequestSigner, lifetime: Duration = .seconds(900)) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.signer = signer
        self.lifetime = lifetime
    }

    func put(_ card: CardDetails) -> CardVaultReference {
        let token = "cvt_" + GatewayIdentifiers.random(32)
        let now = ContinuousClock.now
        contents.withLock { contents in
            // Expired cards are dropped at most once a second, not on every put.
            if now >= contents.nextSweep {
                contents.entries = contents.entries.filter { $0.value.expires > now }
                contents.nextSweep = now + .seconds(1)
            }
            contents.entries[token] = Entry(card: card, expires: now + lifetime)
        }
        return CardVaultReference(url: "\(baseURL)/internal/card-vault/\(token)/take", token: token)
    }

    func take(_ token: String) -> CardDetails? {
        contents.withLock { contents in
            guard let entry = contents.entries.removeValue(forKey: token), entry.expires > .now else { return nil }
            return entry.card
        }
    }

    func discard(_ reference: CardVaultReference?) {
        guard let reference else { return }
        _ = contents.withLock { $0.entries.removeValue(forKey: reference.token) }
    }

    /// `POST /internal/card-vault/{token}/take`, for payment-core only.
    func addRoutes(to router: Router<PaywireRequestContext>) {
        router.post("/internal/card-vault/:token/take") { request, context in
            let token = try context.pathParameter("token")
            guard let signature = request.headers[.init(InternalRequestSigner.header)!], self.signer.isValid(signature, for: token) else {
                throw APIError(status: .forbidden, type: "invalid_request", code: "IR_17", message: "Internal route", field: nil)
            }
            guard let card = self.take(token) else { throw APIError.notFound("Card") }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try PaywireJSON.encoder.encode(card))))
        }
    }
}
