import Foundation
import PaywireModels
import PaywireRuntime

/// `webhook_details` as merchants send it: Hyperswitch's legacy single-URL fields and
/// `multiple_webhooks_list`.
struct WebhookDetails: Sendable {
    var webhookVersion: String?
    var webhookUsername: String?
    var webhookPassword: String?
    var webhookURL: String?
    var paymentCreatedEnabled: Bool?
    var paymentSucceededEnabled: Bool?
    var paymentFailedEnabled: Bool?
    /// nil: not given (leave endpoints alone); empty: remove them all.
    var endpoints: [EndpointInput]?

    static func parse(_ object: RequestObject) throws -> WebhookDetails {
        var details = WebhookDetails()
        details.webhookVersion = try object.string("webhook_version", maxLength: 64)
        details.webhookUsername = try object.string("webhook_username", maxLength: 255)
        details.webhookPassword = try object.string("webhook_password", maxLength: 255)
        details.webhookURL = try object.string("webhook_url")
        if let url = details.webhookURL { try Validation.webhookURL(url, field: object.name("webhook_url")) }
        details.paymentCreatedEnabled = try object.bool("payment_created_enabled")
        details.paymentSucceededEnabled = try object.bool("payment_succeeded_enabled")
        details.paymentFailedEnabled = try object.bool("payment_failed_enabled")
        details.endpoints = try object.objects("multiple_webhooks_list")?.map(EndpointInput.parse)
        if let count = details.endpoints?.count, count > InputLimits.endpointsPerProfile {
            throw APIError.invalid(object.name("multiple_webhooks_list"), "a profile has at most \(InputLimits.endpointsPerProfile) webhook endpoints")
        }
        return details
    }

    /// The legacy fields as stored in the profile document (the password is sealed apart).
    var legacyDocument: [String: JSONValue] {
        [
            "webhook_version": webhookVersion.map(JSONValue.string) ?? .null,
            "webhook_username": webhookUsername.map(JSONValue.string) ?? .null,
            "webhook_url": webhookURL.map(JSONValue.string) ?? .null,
            "payment_created_enabled": paymentCreatedEnabled.map(JSONValue.bool) ?? .null,
            "payment_succeeded_enabled": paymentSucceededEnabled.map(JSONValue.bool) ?? .null,
            "payment_failed_enabled": paymentFailedEnabled.map(JSONValue.bool) ?? .null,
        ]
    }
}

/// One entry of `multiple_webhooks_list`, or the body of `POST …/webhooks`.
struct EndpointInput: Sendable {
    var endpointId: String?
    var url: String?
    var events: [String]?
    var status: String?
    /// Requests per second at most; nil: not given (unchanged on update); `.some(nil)`: removed.
    var rateLimit: Int??
    /// `per_object`: one object's events reach this endpoint in the order they were published.
    var ordering: String?
    static let orderings: Set<String> = ["none", "per_object"]

    static let statuses: Set<String> = ["active", "inactive", "deprecated"]

    static func parse(_ object: RequestObject) throws -> EndpointInput {
        var input = EndpointInput()
        input.endpointId = try object.string("webhook_endpoint_id", maxLength: 64)
        input.url = try object.string("webhook_url")
        if let url = input.url { try Validation.webhookURL(url, field: object.name("webhook_url")) }
        if let events = try object.strings("events") {
            guard !events.isEmpty else { throw APIError.invalid(object.name("events"), "must name at least one event type") }
            for (index, event) in events.enumerated() where !WebhookEventType.known.contains(event) {
                throw APIError.invalid("\(object.name("events"))[\(index)]", "is not a known event type: \(event)")
            }
            // Order-preserving de-duplication: the seed sends the same list in any order.
            var seen = Set<String>()
            input.events = events.filter { seen.insert($0).inserted }
        }
        if object.has("rate_limit") {
            input.rateLimit = .some(object.isSet("rate_limit") ? try object.integer("rate_limit", range: 1...10_000) : nil)
        }
        input.ordering = try object.string("ordering", maxLength: 32)
        if let ordering = input.ordering, !orderings.contains(ordering) {
            throw APIError.invalid(object.name("ordering"), "must be none or per_object")
        }
        input.status = try object.string("status", maxLength: 32)
        if let status = input.status, !statuses.contains(status) {
            throw APIError.invalid(object.name("status"), "must be one of active, inactive, deprecated")
        }
        return input
    }
}

enum Validation {
    static let identifierCharacters = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "_-"))

    static func identifier(_ value: String, field: String) throws {
        guard (1...64).contains(value.count), value.unicodeScalars.allSatisfy(identifierCharacters.contains) else {
            throw APIError.invalid(field, "must be 1 to 64 letters, digits, '_' or '-'")
        }
    }

    /// Webhook targets and return URLs: absolute http(s), a host (DNS name, IPv4 as four decimal
    /// numbers, or bracketed IPv6), an optional port 1–65535, then path, query and fragment in
    /// plain URL characters (no credentials). `HTTPTargetURL` holds the rules; the OpenAPI
    /// document states the same as a pattern (the label, address and length limits in words).
    static let urlPattern = #"^[Hh][Tt][Tt][Pp][Ss]?://(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?([/?#][A-Za-z0-9._~!$&'()*+,;=:@/?#-]*)?$"#
    @discardableResult
    static func webhookURL(_ value: String, field: String) throws -> HTTPTargetURL {
        do {
            return try HTTPTargetURL.parse(value)
        } catch {
            throw APIError.invalid(field, error.description)
        }
    }
}
