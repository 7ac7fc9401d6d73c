import Metrics
import Prometheus
import Synchronization

/// The process's Prometheus registry. `MetricsSystem` can be bootstrapped once per process, and
/// tests build several applications in one process, so this does it once and shares the registry.
public enum PaywireMetrics {
    private static let state = Mutex<PrometheusCollectorRegistry?>(nil)

    public static var registry: PrometheusCollectorRegistry {
        state.withLock { registry in
            if let registry { return registry }
            let created = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: created))
            registry = created
            return created
        }
    }

    public static func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
