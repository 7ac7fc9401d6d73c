import Foundation
import PaywireModels

/// An endpoint's status as every route shows it: what the merchant set, unless the dispatcher has
/// since made it inactive (a 410, or failing too long) and the merchant has not changed it after
/// that — a change reactivates it, so from that moment it reads `active` everywhere, before the
/// dispatcher's next delivery clears its own mark.
enum EndpointStatus {
    static func judged(_ endpoint: [String: JSONValue], health: JSONValue?, modifiedAt: Date?, withHealth: Bool) -> [String: JSONValue] {
        var endpoint = endpoint
        var health = health
        if case .object(var view)? = health, view["state"] == .string("inactive") {
            let since = view["inactive_since"]?.stringValue.flatMap(PaywireJSON.parse)
            if let since, let modifiedAt, modifiedAt > since {
                view["state"] = .string("active")
                view["inactive_reason"] = .null
                view["inactive_since"] = .null
                health = .object(view)
            } else if endpoint["status"] == .string("active") {
                endpoint["status"] = .string("inactive")
            }
        }
        if withHealth { endpoint["health"] = health ?? .null }
        return endpoint
    }
}
