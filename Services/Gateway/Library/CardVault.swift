import Foundation
import Hummingbird
import NIOCore
import PaywireModels
import PaywireRuntime
import Synchronization

/// Card data between the client's request and payment-core's connector call, in this process's
/// memory only. Commands on Kafka carry a one-time token instead; payment-core takes the card
/// from the gateway's internal listener (never the public one) with a take signed over method,
/// host, path, token and time. A card is handed out once and forgotten after `lifetime`, and a
/// gateway restart forgets them all: the client then confirms again.
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
    let signer: CardVaultSigner
    /// `host:port` the internal URL names: a take addressed to any other host is refused, so a
    /// signature payment-core was tricked into making for another host is worthless here.
    let authority: String

    init(internalURL: String, signer: CardVaultSigner, lifetime: Duration = .seconds(900)) throws {
        baseURL = internalURL.hasSuffix("/") ? String(internalURL.dropLast()) : internalURL
        guard let url = URL(string: baseURL), let authority = CardVaultSigner.authority(of: url) else {
            throw ServiceConfiguration.ConfigurationError(key: "PAYWIRE_GATEWAY_INTERNAL_URL", reason: "an http URL with a host")
        }
        self.authority = authority
        self.signer = signer
        self.lifetime = lifetime
    }

    func put(_ card: CardDetails) -> CardVaultReference {
        let token = "cvt_" + Identifier.random(32)
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

    /// `POST /internal/card-vault/{token}/take`, for payment-core only, on the internal listener.
    func addRoutes(to router: Router<PaywireRequestContext>) {
        router.post("/internal/card-vault/:token/take") { request, context in
            let token = try context.pathParameter("token")
            let host = (request.head.authority ?? "").lowercased()
            guard host == self.authority, self.signer.isValid(
                signature: request.headers[.init(CardVaultSigner.signatureHeader)!], timestamp: request.headers[.init(CardVaultSigner.timestampHeader)!],
                method: request.method.rawValue, host: host, path: request.uri.path, token: token
            ) else {
                throw APIError(status: .forbidden, type: "invalid_request", code: "IR_17", message: "Internal route", field: nil)
            }
            guard let card = self.take(token) else { throw APIError.notFound("Card") }
            return JSONResponse(encoding: card)
        }
    }
}
