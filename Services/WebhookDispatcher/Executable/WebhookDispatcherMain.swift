import PaywireRuntime
import WebhookDispatcher

@main
struct WebhookDispatcherMain {
    static func main() async {
        await ServiceMain.run(serviceName: WebhookDispatcherService.name, defaultPort: WebhookDispatcherService.defaultPort, build: WebhookDispatcherService.buildApplication)
    }
}
