import Crypto
import Foundation
import PaywireModels

/// The body merchants receive, in Hyperswitch's shape:
/// `{merchant_id, event_id, event_type, content: {type, object}, timestamp}`.
public enum OutgoingWebhook {
    public static let userAgent = "Paywire-Webhooks/1"
    public static let signatureHeader = "X-Webhook-Signature-512"
    /// The headers Paywire sets on every delivery (lowercased); any other came from the merchant.
    static let ownHeaders: Set<String> = ["content-type", "user-agent", signatureHeader.lowercased(), "webhook-id", "webhook-timestamp", "webhook-signature"]

    /// A header name fit for a log line (control characters escaped).
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.prefix(128).map { $0.properties.generalCategory == .control ? "?" : Character($0) })
    }

    public static func contentType(forEventType eventType: String) -> String {
        if eventType.hasPrefix("refund_") { return "refund_details" }
        if eventType.hasPrefix("dispute_") { return "dispute_details" }
        if eventType.hasPrefix("mandate_") { return "mandate_details" }
        return "payment_details"
    }

    public static func eventClass(forEventType eventType: String) -> String {
        if eventType.hasPrefix("refund_") { return "refunds" }
        if eventType.hasPrefix("dispute_") { return "disputes" }
        if eventType.hasPrefix("mandate_") { return "mandates" }
        return "payments"
    }

    public static func body(merchantId: String, eventId: String, eventType: String, object: JSONValue, timestamp: Date) throws -> String {
        let envelope: JSONValue = .object([
            "merchant_id": .string(merchantId),
            "event_id": .string(eventId),
            "event_type": .string(eventType),
            "content": .object(["type": .string(contentType(forEventType: eventType)), "object": object]),
            "timestamp": .string(PaywireJSON.format(timestamp)),
        ])
        return try PaywireJSON.text(envelope)
    }

    /// The same body with the object as the JSON text its event carried (`RawEventEnvelope`),
    /// written without a `JSONValue`: byte for byte what `body(object:)` writes when that text is
    /// `JSONTextWriter`'s, as every Paywire service's is (`OutgoingWebhookTests`).
    public static func body(merchantId: String, eventId: String, eventType: String, objectJSON: [UInt8], timestamp: Date) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(objectJSON.count + 256)
        output.append(contentsOf: #"{"content":{"object":"#.utf8)
        output.append(contentsOf: objectJSON)
        output.append(contentsOf: #","type":"#.utf8)
        JSONTextWriter.write(string: contentType(forEventType: eventType), into: &output)
        output.append(contentsOf: #"},"event_id":"#.utf8)
        JSONTextWriter.write(string: eventId, into: &output)
        output.append(contentsOf: #","event_type":"#.utf8)
        JSONTextWriter.write(string: eventType, into: &output)
        output.append(contentsOf: #","merchant_id":"#.utf8)
        JSONTextWriter.write(string: merchantId, into: &output)
        output.append(contentsOf: #","timestamp":"#.utf8)
        JSONTextWriter.write(string: PaywireJSON.format(timestamp), into: &output)
        output.append(UInt8(ascii: "}"))
        return String(decoding: output, as: UTF8.self)
    }

    /// Lowercase hex HMAC-SHA512 of the exact body bytes.
    public static func signature(body: String, key: String) -> String {
        let mac = HMAC<SHA512>.authenticationCode(for: Data(body.utf8), using: SymmetricKey(data: Data(key.utf8)))
        return Hex.encode(mac)
    }

    /// Standard Webhooks signature (as Svix): `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`,
    /// keyed with the base64 part of a `whsec_` secret; one entry per valid secret, space-separated.
    public static func standardSignature(id: String, timestamp: Int, body: String, secrets: [String]) -> String {
        secrets.compactMap { secret -> String? in
            guard let key = Data(base64Encoded: String(secret.dropFirst("whsec_".count))) else { return nil }
            let mac = HMAC<SHA256>.authenticationCode(for: Data("\(id).\(timestamp).\(body)".utf8), using: SymmetricKey(data: key))
            return "v1," + Data(mac).base64EncodedString()
        }.joined(separator: " ")
    }

    /// base64 of `{object_id}_{event_type}_{endpoint_id}` (without the endpoint for the legacy
    /// single URL): the same delivery always gets the same id, so it can exist only once.
    public static func idempotentEventId(objectId: String, eventType: String, endpointId: String?) -> String {
        let raw = endpointId.map { "\(objectId)_\(eventType)_\($0)" } ?? "\(objectId)_\(eventType)"
        return Data(raw.utf8).base64EncodedString()
    }

    /// `evt_` + 32 hex digits, time-ordered: milliseconds first, then randomness.
    public static func makeEventId(now: Date = Date()) -> String {
        let milliseconds = UInt64(now.timeIntervalSince1970 * 1000)
        let random = Hex.encode(Identifier.randomBytes(10))
        return "evt_" + Hex.encode(milliseconds, digits: 12) + random
    }

    /// A failed request as the merchant sees it in the attempts log: the error's own words, less
    /// anything about how Paywire was built (TLS errors name the source file of the library that
    /// raised them, `… at /…/.build/checkouts/swift-nio-ssl/…/tls_record.cc:127`).
    public static func describe(_ error: any Error) -> String {
        describe(text: String(describing: error))
    }

    static func describe(text: String) -> String {
        var text = text
        // " at <path>:<line>" as BoringSSL's errors end, then any other absolute source path.
        for pattern in [#"\s+at\s+/[^\s\]\)]*:\d+"#, #"/[^\s\]\)]*\.(?:cc|c|h|cpp|swift)(?::\d+)*"#] {
            text = text.replacingOccurrences(of: pattern, with: "", options: .regularExpression)
        }
        return text
    }
}
