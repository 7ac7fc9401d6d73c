import Foundation
import Hummingbird
import NIOCore
import PaywireModels

public struct PaywireRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by the gateway's authenticator middleware; nil on routes that take no key, and when
    /// no valid key came with the request.
    public var caller: APICaller?
    /// The connection this request came on, so a handler can run another route in-process under
    /// a new context of the same connection (the console calls the public API this way).
    public let channel: any Channel

    public init(source: Source) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// A fresh context for another request on the same connection.
    public var sibling: PaywireRequestContext {
        PaywireRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: logger))
    }

    /// Bodies over this are refused with 413 before they are decoded.
    public var maxUploadSize: Int { 1 << 20 }

    /// Responses use the same JSON settings as events and webhooks.
    public var responseEncoder: JSONEncoder { PaywireJSON.encoder }
}

extension PaywireRequestContext {
    /// A path parameter, percent-decoded, refused with 400 naming it when it could never be an
    /// id (NUL or other control characters, bad percent-encoding, over 64 characters). Anything else
    /// is looked up as given and answers 404 when nothing has that id.
    public func pathParameter(_ name: String) throws -> String {
        let raw = try parameters.require(name)
        guard let decoded = raw.removingPercentEncoding else { throw APIError.invalid(name, "is not validly percent-encoded") }
        try InputText.checkIdentifierText(decoded, field: name)
        // Every id Paywire hands out or accepts is at most 64 characters.
        guard decoded.unicodeScalars.count <= 64 else { throw APIError.invalid(name, "must be at most 64 characters") }
        return decoded
    }
}

extension InputText {
    /// An id given in a query parameter or a filter, as the OpenAPI document's `identifierText`:
    /// 1 to 64 characters, none a control.
    public static func identifier(_ value: String, field: String) throws -> String {
        guard !value.isEmpty else { throw APIError.invalid(field, "must not be empty") }
        guard value.unicodeScalars.count <= 64 else { throw APIError.invalid(field, "must be at most 64 characters") }
        try checkIdentifierText(value, field: field)
        return value
    }

    /// Ids that arrive in paths and headers: printable, at most 255 bytes.
    public static func checkIdentifierText(_ value: String, field: String) throws {
        guard value.unicodeScalars.count <= 255 else { throw APIError.invalid(field, "must be at most 255 characters") }
        guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError.invalid(field, "must not contain control characters")
        }
    }
}
