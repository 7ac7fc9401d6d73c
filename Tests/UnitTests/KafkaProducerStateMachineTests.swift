import Testing
@testable import PaywireKafka

@Suite struct KafkaProducerStateMachineTests {
    typealias Results = [Result<KafkaDeliveryReport, KafkaError>]

    @Test func reportsArrivingBeforeTheWaitCompleteTheBatchOnlyOnce() async {
        var machine = KafkaProducerStateMachine()
        guard case .start(let id) = machine.startBatch(count: 2) else { Issue.record("not started"); return }
        // Both reports arrive while the sender is still enqueuing: nothing may resume yet.
        if case .resume = machine.record(batch: id, index: 0, result: .success(.init(partition: 0, offset: 1))) { Issue.record("resumed early") }
        if case .resume = machine.record(batch: id, index: 1, result: .success(.init(partition: 1, offset: 7))) { Issue.record("resumed early") }
        let results: Results = await withCheckedContinuation { continuation in
            switch machine.wait(batch: id, continuation: continuation) {
            case .resume(let continuation, let results): continuation.resume(returning: results)
            case .none: Issue.record("a complete batch must resume at wait")
            }
        }
        #expect(results == [.success(.init(partition: 0, offset: 1)), .success(.init(partition: 1, offset: 7))])
        // A duplicate report for a finished batch changes nothing.
        if case .resume = machine.record(batch: id, index: 0, result: .success(.init(partition: 0, offset: 1))) { Issue.record("resumed twice") }
        #expect(machine.inFlightBatches == 0)
    }

    @Test func closingFailsWaitersAndRefusesNewBatches() async {
        var machine = KafkaProducerStateMachine()
        guard case .start(let id) = machine.startBatch(count: 1) else { Issue.record("not started"); return }
        let results: Results = await withCheckedContinuation { continuation in
            if case .resume = machine.wait(batch: id, continuation: continuation) { Issue.record("resumed without a report") }
            machine.beginClosing()
            for (continuation, results) in machine.close() { continuation.resume(returning: results) }
        }
        #expect(results == [.failure(.shutdown)])
        if case .start = machine.startBatch(count: 1) { Issue.record("closed producer accepted a batch") }
    }
}
