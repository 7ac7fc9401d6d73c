import PaywireRuntime
import RecoveryScheduler

@main
struct RecoverySchedulerMain {
    static func main() async {
        await ServiceMain.run(serviceName: RecoverySchedulerService.name, defaultPort: RecoverySchedulerService.defaultPort, build: RecoverySchedulerService.buildApplication)
    }
}
