import ServiceLifecycle

/// Starts a service only once start-up (migrations, topics) is done.
public struct DeferredService<Wrapped: Service>: Service {
    let waitUntil: @Sendable () async throws -> Void
    let service: Wrapped

    public init(waitUntil: @escaping @Sendable () async throws -> Void, service: Wrapped) {
        self.waitUntil = waitUntil
        self.service = service
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { try await waitUntil() }
        if Task.isShuttingDownGracefully || Task.isCancelled { return }
        try await service.run()
    }
}
