import Foundation
import Logging
import NIOConcurrencyHelpers
import PaywireModels
import PaywireRuntime
import PaywireStore

/// Where the dispatcher sends one event. `endpointId` is nil for the legacy single `webhook_url`,
/// which counts as one endpoint subscribed to every event type.
public struct WebhookTarget: Sendable, Equatable {
    public var endpointId: String?
    public var url: String
    /// The profile's `payment_response_hash_key`, for `X-Webhook-Signature-512`.
    public var hashKey: String?
    /// The profile's `outgoing_webhook_custom_http_headers`.
    public var customHeaders: [String: String]
    /// The endpoint asked for its events of one object in the order they were published.
    public var ordered = false
}

/// A delivery's receiver as configured now.
public enum DeliveryTarget: Sendable, Equatable {
    /// An endpoint: its URL, its Standard Webhooks secrets, when the merchant last changed it, and
    /// its optional rate limit (requests per second).
    case endpoint(url: String, secrets: EndpointSecrets, modifiedAt: Date, rateLimit: Int?)
    /// The profile's legacy single `webhook_url` (signed with X-Webhook-Signature-512 only).
    case legacy(url: String)
    /// No longer configured; `reason` is what the delivery's status says.
    case gone(reason: String)
}

/// An endpoint's signing secrets: the current one, and the previous one during the 24 hours
/// after a rotation.
public struct EndpointSecrets: Sendable, Equatable {
    public var current: String
    /// The secret before the last rotation, and when it stops signing (24 h after the rotation).
    public var previous: String?
    public var previousExpiresAt: Date?

    public init(current: String, previous: String? = nil, previousExpiresAt: Date? = nil) {
        self.current = current
        self.previous = previous
        self.previousExpiresAt = previousExpiresAt
    }

    /// The secrets a request sent at `now` is signed with: the rotated-away one only until its
    /// expiry, judged at send time (a cached configuration cannot keep it alive).
    public func signing(at now: Date = Date()) -> [String] {
        guard let previous, let expires = previousExpiresAt, expires > now else { return [current] }
        return [current, previous]
    }
}

/// The merchants' webhook configuration as the dispatcher's own copy holds it
/// (`webhooks.merchant_configurations`, kept from the gateway's snapshots on
/// `paywire.configuration`), secrets opened. Each merchant's configuration is cached and checked
/// against the copy's version on every lookup, so a change the copy receives is used at once; an
/// event made under a later version waits for the copy first (`EventFanOut`).
public final class ConfigurationRepository: Sendable {
    struct Profile: Sendable {
        var legacyURL: String?
        var legacyDisabled: Set<String>
        var hashKey: String?
        var customHeaders: [String: String]
    }

    struct Endpoint: Sendable {
        var id: String
        var profileId: String
        var url: String
        var events: Set<String>
        var status: String
        var secrets: EndpointSecrets
        var modifiedAt: Date
        var rateLimit: Int?
        var ordered: Bool
    }

    struct MerchantConfiguration: Sendable {
        var version: Int64
        /// When the version was last confirmed current.
        var checkedAt: ContinuousClock.Instant = .now
        var defaultProfileId: String?
        var profiles: [String: Profile]
        var endpoints: [Endpoint]
    }

    let copy: ConfigurationCopy
    private let secrets: SecretBox
    private let logger: Logger
    private let cache = NIOLockedValueBox<[String: MerchantConfiguration]>([:])

    public init(copy: ConfigurationCopy, secrets: SecretBox, logger: Logger) {
        self.copy = copy
        self.secrets = secrets
        self.logger = logger
    }

    /// `minimumVersion`: a cached configuration older than this is never used (an event made
    /// under a version goes out under that version or a later one).
    public func webhookTargets(merchantId: String, profileId: String?, eventType: String, maxAge: Duration = .zero, minimumVersion: Int64 = 0) async throws -> [WebhookTarget] {
        let configuration = try await load(merchantId, maxAge: maxAge, minimumVersion: minimumVersion)
        guard let profileId = profileId ?? configuration.defaultProfileId, let profile = configuration.profiles[profileId] else { return [] }
        // Endpoints that are not deprecated replace the legacy URL (an inactive one only pauses
        // its own deliveries); deprecated ones are final and give the legacy URL back.
        let endpoints = configuration.endpoints.filter { $0.profileId == profileId && $0.status != "deprecated" }
        if !endpoints.isEmpty {
            return endpoints
                .filter { $0.status == "active" && $0.events.contains(eventType) }
                .map { WebhookTarget(endpointId: $0.id, url: $0.url, hashKey: profile.hashKey, customHeaders: profile.customHeaders, ordered: $0.ordered) }
        }
        guard let url = profile.legacyURL, !profile.legacyDisabled.contains(eventType) else { return [] }
        return [WebhookTarget(endpointId: nil, url: url, hashKey: profile.hashKey, customHeaders: profile.customHeaders)]
    }

    /// Where a pending delivery goes now, checked just before each attempt: an endpoint removed,
    /// deprecated or made inactive since the event was fanned out gets no further attempt, and
    /// an endpoint's current URL and secrets are used (a rotation or a URL change applies at once).
    /// `maxAge`: a cached configuration confirmed current this recently is used without asking
    /// again (the dispatcher confirms a whole claimed batch's merchants in one query first).
    public func currentTarget(merchantId: String, profileId: String?, endpointId: String?, maxAge: Duration = .zero) async throws -> DeliveryTarget {
        let configuration = try await load(merchantId, maxAge: maxAge)
        if let endpointId {
            guard let endpoint = configuration.endpoints.first(where: { $0.id == endpointId }) else { return .gone(reason: "endpoint_removed") }
            switch endpoint.status {
            case "active": return .endpoint(url: endpoint.url, secrets: endpoint.secrets, modifiedAt: endpoint.modifiedAt, rateLimit: endpoint.rateLimit)
            case "deprecated": return .gone(reason: "endpoint_deprecated")
            default: return .gone(reason: "endpoint_inactive")
            }
        }
        guard let profileId = profileId ?? configuration.defaultProfileId, let profile = configuration.profiles[profileId] else {
            return .gone(reason: "profile_removed")
        }
        guard let url = profile.legacyURL else { return .gone(reason: "webhook_url_removed") }
        return .legacy(url: url)
    }

    /// Confirms the cached configurations of these merchants in one query: a current one is
    /// marked checked now, a stale one is dropped (the next lookup loads it).
    /// Waits until the copy holds `version` of the merchant's configuration; at once, with no
    /// query, when the cached configuration (read from the copy) already has it.
    func waitFor(merchantId: String, version: Int64, timeout: Duration = .seconds(10)) async throws {
        if let cached = cache.withLockedValue({ $0[merchantId]?.version }), cached >= version { return }
        try await copy.waitFor(merchantId: merchantId, version: version, timeout: timeout)
    }

    public func revalidate(_ merchantIds: Set<String>) async throws {
        guard !merchantIds.isEmpty else { return }
        let ids = Array(merchantIds)
        let versions = try await copy.versions(ids)
        let now = ContinuousClock.now
        cache.withLockedValue { cache in
            for id in ids {
                guard let cached = cache[id] else { continue }
                if cached.version == versions[id] ?? 0 { cache[id]?.checkedAt = now } else { cache[id] = nil }
            }
        }
    }

    func load(_ merchantId: String, maxAge: Duration = .zero, minimumVersion: Int64 = 0) async throws -> MerchantConfiguration {
        if maxAge > .zero, let cached = cache.withLockedValue({ $0[merchantId] }), cached.version >= minimumVersion, ContinuousClock.now - cached.checkedAt <= maxAge {
            return cached
        }
        // The version is read first: a snapshot stored while the load below runs changes it
        // again, and the next lookup reloads.
        let version = try await copy.versions([merchantId])[merchantId] ?? 0
        if let cached = cache.withLockedValue({ $0[merchantId] }), cached.version == version {
            let now = ContinuousClock.now
            cache.withLockedValue { $0[merchantId]?.checkedAt = now }
            return cached
        }
        var configuration = MerchantConfiguration(version: version, defaultProfileId: nil, profiles: [:], endpoints: [])
        guard let snapshot = try await copy.current(merchantId), !snapshot.deleted else {
            cache.withLockedValue { $0[merchantId] = configuration }
            return configuration
        }
        configuration.version = snapshot.version
        configuration.defaultProfileId = snapshot.defaultProfileId
        for profile in snapshot.profiles {
            var headers: [String: String] = [:]
            if let sealed = profile.sealedCustomHeaders,
               let text = try? secrets.open(sealed, as: .profileCustomHeaders, row: profile.profileId),
               let map = try? PaywireJSON.decoder.decode([String: String].self, from: Data(text.utf8)) {
                headers = map
            }
            configuration.profiles[profile.profileId] = Profile(
                legacyURL: profile.webhookURL,
                legacyDisabled: Set(profile.disabledEventTypes),
                hashKey: try profile.sealedHashKey.map { try secrets.open($0, as: .profileHashKey, row: profile.profileId) },
                customHeaders: headers
            )
        }
        for endpoint in snapshot.endpoints {
            let previous = endpoint.previousSecretExpiresAt.map { $0 > Date() } == true ? endpoint.sealedPreviousSecret : nil
            configuration.endpoints.append(Endpoint(
                id: endpoint.endpointId, profileId: endpoint.profileId, url: endpoint.url, events: Set(endpoint.events), status: endpoint.status,
                secrets: EndpointSecrets(
                    current: try secrets.open(endpoint.sealedSecret, as: .endpointSigningSecret, row: endpoint.endpointId),
                    previous: try previous.map { try secrets.open($0, as: .endpointSigningSecret, row: endpoint.endpointId) },
                    previousExpiresAt: endpoint.previousSecretExpiresAt
                ),
                modifiedAt: endpoint.modifiedAt, rateLimit: endpoint.rateLimit, ordered: endpoint.ordering == "per_object"
            ))
        }
        cache.withLockedValue { $0[merchantId] = configuration }
        return configuration
    }
}
