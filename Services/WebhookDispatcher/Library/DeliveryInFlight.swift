import Foundation

/// The requests one replica has running, per endpoint and per receiving host, and what each
/// endpoint may still claim: its own limit, and its fair share of its host's ceiling, so that
/// many endpoints behind one host (a relay, a no-code platform) are bounded together and none of
/// them can take the whole host.
struct DeliveryInFlight: Sendable {
    private(set) var perEndpoint: [String: Int] = [:]
    /// Per host, the endpoints with requests running there and how many each has.
    private(set) var perHost: [String: [String: Int]] = [:]
    private(set) var total = 0

    /// The host (scheme, name and port) a delivery URL is sent to: endpoints sharing one share it.
    static func hostKey(_ url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return url }
        let scheme = components.scheme?.lowercased() ?? "http"
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(host.lowercased()):\(port)"
    }

    mutating func started(endpoint: String, host: String) {
        perEndpoint[endpoint, default: 0] += 1
        perHost[host, default: [:]][endpoint, default: 0] += 1
        total += 1
    }

    mutating func finished(endpoint: String, host: String) {
        total -= 1
        perEndpoint[endpoint, default: 1] -= 1
        if perEndpoint[endpoint] == 0 { perEndpoint[endpoint] = nil }
        perHost[host]?[endpoint, default: 1] -= 1
        if perHost[host]?[endpoint] == 0 { perHost[host]?[endpoint] = nil }
        if perHost[host]?.isEmpty == true { perHost[host] = nil }
    }

    /// For every endpoint with requests running, how many more it may start now (zero or less:
    /// none): up to its own limit and its share of its host's ceiling, the ceiling divided among
    /// the host's busy endpoints. An endpoint not running anything yet may start up to its own
    /// limit, so a newcomer always gets a turn and the host's slots drift towards a fair split.
    func allowance(perEndpoint endpointLimit: Int, perHost hostLimit: Int) -> [String: Int] {
        var allowance: [String: Int] = [:]
        for (_, endpoints) in perHost {
            let share = max(1, hostLimit / endpoints.count)
            for (endpoint, running) in endpoints {
                allowance[endpoint] = min(allowance[endpoint] ?? .max, min(endpointLimit, share) - running)
            }
        }
        return allowance
    }
}
