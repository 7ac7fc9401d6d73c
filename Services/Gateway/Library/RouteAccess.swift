import Hummingbird
import PaywireRuntime

/// Who may call a route. Every public route of the gateway is added in one of these groups, and
/// the group's middleware decides before the handler runs (and before a body is read, so an
/// unauthenticated client never makes the server buffer a megabyte).
enum RouteAccess: Sendable, Equatable {
    /// No key: the OpenAPI document, incoming connector webhooks (signed by the connector).
    case open
    /// The platform operator's key only.
    case admin
    /// The admin key or a merchant's secret key, for the merchant the route is about.
    case merchant(MerchantScope)
    /// As `.merchant(.resource)`, and also the merchant's publishable key: the handler admits it
    /// only with the payment's unexpired client secret (`ClientSecretAccess`).
    case client

    enum MerchantScope: Sendable, Equatable {
        /// `{merchant_id}` in the path.
        case path
        /// The `x-merchant-id` header (the v2 routes).
        case header
        /// The object the route names (a payment, a refund) or the body: the handler resolves
        /// the merchant, and answers 404 for another merchant's object.
        case resource
    }
}

/// Puts the caller named by `api-key` into the context (nil when there is none or it is bad).
struct AuthenticatorMiddleware: RouterMiddleware {
    let authentication: GatewayAuthentication

    func handle(_ request: Request, context: PaywireRequestContext, next: (Request, PaywireRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        context.caller = try await authentication.identify(request)
        return try await next(request, context)
    }
}

/// Refuses a caller the route's group does not admit: 401 without a valid key, 403 for a
/// merchant on an admin route, 404 for another merchant's id.
struct AccessMiddleware: RouterMiddleware {
    let access: RouteAccess
    let authentication: GatewayAuthentication

    func handle(_ request: Request, context: PaywireRequestContext, next: (Request, PaywireRequestContext) async throws -> Response) async throws -> Response {
        // A malformed id in the path is named as such (400), whoever asks.
        let pathMerchant = context.parameters.get("merchant_id") != nil ? try context.pathParameter("merchant_id") : nil
        switch access {
        case .open:
            break
        case .admin:
            switch context.caller {
            case .admin: break
            case .merchant: throw APIError(status: .forbidden, type: "invalid_request", code: "IR_17", message: "This route needs the admin API key", field: "api-key")
            case .publishable, nil: throw APIError.unauthorized()
            }
        case .client:
            guard context.caller != nil else { throw APIError.unauthorized() }
        case .merchant(let scope):
            // A publishable key opens no merchant route: it is in every browser that pays.
            guard let caller = context.caller, !caller.isPublishable else { throw APIError.unauthorized() }
            switch scope {
            case .path: try await authentication.requireAccess(caller, merchantId: try pathMerchant ?? context.pathParameter("merchant_id"))
            case .header: try await authentication.requireAccess(caller, merchantId: try request.requiredHeader("x-merchant-id"))
            case .resource: break
            }
        }
        return try await next(request, context)
    }
}

extension APICaller {
    var isPublishable: Bool {
        if case .publishable = self { true } else { false }
    }
}

extension PaywireRequestContext {
    /// The caller the access middleware admitted. Only routes in an admin or merchant group read
    /// it, so a missing caller is a route added to the wrong group.
    var authenticatedCaller: APICaller {
        get throws {
            guard let caller else { throw APIError.unauthorized() }
            return caller
        }
    }
}

extension Request {
    /// A header the route needs, refused with 400 naming it when missing or not an id.
    func requiredHeader(_ name: String) throws -> String {
        guard let value = headers[.init(name)!], !value.isEmpty else { throw APIError.invalid(name, "header is required", code: "IR_05") }
        try InputText.checkIdentifierText(value, field: name)
        return value
    }
}

/// The gateway's router, with each route added through the group of its access. The table it
/// keeps ("GET /accounts/{merchant_id}" → access) lets the OpenAPI test hold each operation's
/// declared `security` to what the router enforces.
final class AccessControlledRouter: @unchecked Sendable {
    let router: Router<PaywireRequestContext>
    let authentication: GatewayAuthentication
    private(set) var access: [String: RouteAccess] = [:]

    init(router: Router<PaywireRequestContext>, authentication: GatewayAuthentication) {
        self.router = router
        self.authentication = authentication
    }

    /// Adds the routes `add` puts into a group that admits only `access`'s callers.
    func routes(_ access: RouteAccess, _ add: (RouterGroup<PaywireRequestContext>) -> Void) {
        let before = Set(router.routes.map(Self.key))
        let group = router.group()
        if access != .open {
            group.add(middleware: AuthenticatorMiddleware(authentication: authentication))
            group.add(middleware: AccessMiddleware(access: access, authentication: authentication))
        }
        add(group)
        for key in Set(router.routes.map(Self.key)).subtracting(before) { self.access[key] = access }
    }

    /// "METHOD /path/{param}", the form the OpenAPI test compares.
    static func key(_ route: Router<PaywireRequestContext>.RouteDescription) -> String {
        let path = route.path.description.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
        return "\(route.method.rawValue) /\(path)"
    }
}
