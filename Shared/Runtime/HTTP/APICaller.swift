/// Who is calling a public route, as the gateway's authenticator found it from the `api-key`
/// header: the platform operator, one merchant's secret key, or one merchant's publishable key
/// (which a browser holds, so it opens almost nothing).
public enum APICaller: Sendable, Equatable {
    case admin
    case merchant(String)
    case publishable(merchantId: String)
}
