import Hummingbird

public struct PaywireRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// Bodies over this are refused with 413 before they are decoded.
    public var maxUploadSize: Int { 1 << 20 }
}
