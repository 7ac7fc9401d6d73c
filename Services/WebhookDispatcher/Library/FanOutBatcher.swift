/// Group commit for the fan-out: events handed in while a write is running are written together
/// by the next one, so under load one transaction (and one configuration check) serves many
/// events, and at low load an event is written at once with no added wait. Each caller returns
/// when its own event is committed.
///
/// Nothing here waits for one merchant: events come in only once their merchant's configuration
/// copy is current (`EventFanOut.handle` waits for that per key, concurrently). A batch that fails
/// hands every event back to its own caller to write alone (`WriteAlone`), all at once rather than
/// one after another, so a bad event fails alone (and is retried or dead-lettered alone) and
/// nobody else's events queue behind it.
actor FanOutBatcher {
    typealias Incoming = EventFanOut.Incoming
    typealias Writer = @Sendable ([Incoming]) async throws -> Void

    /// The batch this event was in failed: its caller writes it alone.
    struct WriteAlone: Error {}

    private struct Waiting {
        var item: Incoming
        var continuation: CheckedContinuation<Void, any Error>
    }

    private var queue: [Waiting] = []
    private var writing = false
    private var writer: Writer?
    /// The most events in one transaction.
    let largestBatch = 500

    /// Writes the event with others that arrive together; on a failed batch, alone.
    func write(_ item: Incoming, writer: @escaping Writer) async throws {
        do {
            try await submit(item, writer: writer)
        } catch is WriteAlone {
            try await writer([item])
        }
    }

    private func submit(_ item: Incoming, writer: @escaping Writer) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            queue.append(Waiting(item: item, continuation: continuation))
            self.writer = writer
            if !writing {
                writing = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !queue.isEmpty, let writer {
            let batch = Array(queue.prefix(largestBatch))
            queue.removeFirst(batch.count)
            do {
                try await writer(batch.map(\.item))
                for waiting in batch { waiting.continuation.resume() }
            } catch {
                if batch.count == 1 {
                    batch[0].continuation.resume(throwing: error)
                } else {
                    for waiting in batch { waiting.continuation.resume(throwing: WriteAlone()) }
                }
            }
        }
        writing = false
    }
}
