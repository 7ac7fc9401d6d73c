import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import PaywireRuntime

/// `POST /webhooks/{merchant_id}/{connector}` on the public host: connectors are given one URL,
/// and the gateway hands the request, bytes and signature headers unchanged, to payment-core,
/// which owns incoming webhooks (verifies, applies, answers). Its answer is passed back as is.
struct IncomingWebhookProxy: Sendable {
    static let environmentKeys = ["PAYWIRE_PAYMENT_CORE_URL"]
    /// Headers a connector signs with or that describe the body.
    static let forwarded = ["content-type", "stripe-signature", "user-agent"]

    let paymentCoreURL: String
    let http: HTTPClient
    let logger: Logger

    func addRoutes(to router: some RouterMethods<PaywireRequestContext>) {
        router.post("/webhooks/:merchant_id/:connector") { request, context in
            let merchantId = try context.pathParameter("merchant_id")
            let connector = try context.pathParameter("connector")
            let body = try await RequestObject.body(of: request, context: context)
            let path = "/webhooks/\(Self.escape(merchantId))/\(Self.escape(connector))"
            var forward = HTTPClientRequest(url: paymentCoreURL + path)
            forward.method = .POST
            for name in Self.forwarded {
                if let value = request.headers[.init(name)!] { forward.headers.add(name: name, value: value) }
            }
            forward.body = .bytes(body)
            do {
                let response = try await http.execute(forward, timeout: .seconds(10))
                let answer = try await response.body.collect(upTo: 1 << 20)
                // Some processors expect a plain-text acknowledgement (Adyen's `[accepted]`).
                if let type = response.headers.first(name: "content-type"), type.hasPrefix("text/plain") {
                    return Response(status: .init(code: Int(response.status.code)), headers: [.contentType: type], body: .init(byteBuffer: answer))
                }
                return try JSONResponse(json: answer, status: .init(code: Int(response.status.code))).response()
            } catch {
                logger.warning("incoming webhook not passed on to payment-core", metadata: ["error": .string(String(describing: error))])
                // 503: the connector retries later, as it does for any non-2xx.
                throw APIError.unavailable("Webhook not accepted now; retry later")
            }
        }
    }

    static func escape(_ segment: String) -> String {
        StrictPercentEncoding.encode(segment)
    }
}
