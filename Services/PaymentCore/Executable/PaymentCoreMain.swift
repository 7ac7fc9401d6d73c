import PaymentCore
import PaywireRuntime

@main
struct PaymentCoreMain {
    static func main() async throws {
        try await ServiceMain.run(serviceName: PaymentCoreService.name, defaultPort: PaymentCoreService.defaultPort, build: PaymentCoreService.buildApplication)
    }
}
