import Gateway
import PaywireRuntime

@main
struct GatewayMain {
    static func main() async {
        await ServiceMain.run(serviceName: GatewayService.name, defaultPort: GatewayService.defaultPort, build: GatewayService.buildApplication)
    }
}
