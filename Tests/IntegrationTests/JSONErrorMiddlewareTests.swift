import Foundation
import Hummingbird
import HummingbirdTesting
@testable import PaywireKafka
import PaywireRuntime
import PaywireStore
import Testing

/// What a client sees when a handler fails: a fault of ours that passes is a 503 with a JSON body
/// and `Retry-After` (never a bare 500, never a 4xx blaming the client); anything unknown a JSON 500.
@Suite struct JSONErrorMiddlewareTests {
    struct DependencyAway: TransientFault {}
    struct Unknown: Error {}

    func application() -> some ApplicationProtocol {
        let router = Router(context: PaywireRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        router.get("/away") { _, _ -> String in throw DependencyAway() }
        router.get("/broker") { _, _ -> String in throw KafkaError.shutdown }
        router.get("/unknown") { _, _ -> String in throw Unknown() }
        return Application(router: router)
    }

    @Test func aFaultThatPassesIsA503WithRetryAfterAndAJSONBody() async throws {
        try await application().test(.router) { client in
            for path in ["/away", "/broker"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .serviceUnavailable, "\(path)")
                    #expect(response.headers[.retryAfter] == "1", "\(path)")
                    let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                    let error = body?["error"] as? [String: Any]
                    #expect(error?["type"] as? String == "server_not_available" && error?["message"] is String, "\(String(buffer: response.body))")
                }
            }
            try await client.execute(uri: "/unknown", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(response.headers[.retryAfter] == nil)
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                #expect((body?["error"] as? [String: Any])?["code"] as? String == "HE_00")
            }
        }
    }
}
