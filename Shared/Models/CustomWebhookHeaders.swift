/// The rules for a profile's `outgoing_webhook_custom_http_headers`: the gateway refuses a header
/// that breaks them, and the dispatcher drops one (logged) should a stored copy ever break them,
/// so a bad header can never stop a delivery or stand beside a signature it could forge.
public enum CustomWebhookHeaders {
    /// Headers Paywire sets on every delivery, and those that describe the connection rather than
    /// the message (hop-by-hop, framing, routing): a merchant may set none of them, in any case.
    public static let reserved: Set<String> = [
        "x-webhook-signature-512", "webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "user-agent",
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "proxy-authorization",
        "proxy-authenticate", "te", "trailer", "trailers", "upgrade", "expect", "content-encoding", "accept-encoding",
    ]
    public static let maxCount = 20
    public static let maxNameLength = 128
    public static let maxValueLength = 1024

    /// Why `name: value` cannot be sent, or nil when it can.
    public static func problem(name: String, value: String) -> String? {
        // RFC 9110 token characters.
        let token = Set("!#$%&'*+-.^_`|~".unicodeScalars)
        guard !name.isEmpty, name.utf8.count <= maxNameLength,
              name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || token.contains($0)) })
        else { return "is not a valid HTTP header name" }
        if reserved.contains(name.lowercased()) || name.lowercased().hasPrefix("proxy-") || name.lowercased().hasPrefix("webhook-") {
            return "is set by Paywire or by the connection and cannot be replaced"
        }
        guard value.utf8.count <= maxValueLength else { return "must be at most \(maxValueLength) bytes" }
        // Visible ASCII, spaces and tabs inside, and no CR, LF or NUL anywhere (header injection).
        guard value.unicodeScalars.allSatisfy({ ($0.value >= 0x20 && $0.value != 0x7F) || $0.value == 0x09 }) else {
            return "must not contain CR, LF, NUL or other control characters"
        }
        guard value.first != " ", value.last != " ", value.first != "\t", value.last != "\t" else {
            return "must not start or end with white space"
        }
        return nil
    }
}
