import PaymentCore
import PaywireRuntime

@main
struct PaymentCoreMain {
    static func main() async {
        await ServiceMain.run(serviceName: PaymentCoreService.name, defaultPort: PaymentCoreService.defaultPort, build: PaymentCoreService.buildApplication)
    }
}
