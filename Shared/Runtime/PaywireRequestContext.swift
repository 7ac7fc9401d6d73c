import Foundation
import Hummingbird
import PaywireModels

public struct PaywireRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// Bodies over this are refused with 413 before they are decoded.
    public var maxUploadSize: Int { 1 << 20 }

    /// Responses use the same JSON settings as events and webhooks.
    public var responseEncoder: JSONEncoder { PaywireJSON.encoder }
}
