import Testing
@testable import PaywireKafka

@Suite struct KafkaDeliveryBatchTests {
    @Test func reportsArrivingBeforeTheWaitCompleteTheBatchOnce() async {
        let batch = KafkaDeliveryBatch(count: 2)
        // Both reports arrive while the sender is still enqueuing.
        batch.record(1, .success(.init(partition: 1, offset: 7)))
        batch.record(0, .success(.init(partition: 0, offset: 1)))
        let results = await batch.wait()
        #expect(results == [.success(.init(partition: 0, offset: 1)), .success(.init(partition: 1, offset: 7))])
    }

    @Test func theWaitResumesWhenTheLastReportArrives() async {
        let batch = KafkaDeliveryBatch(count: 3)
        batch.record(0, .success(.init(partition: 0, offset: 0)))
        async let results = batch.wait()
        try? await Task.sleep(for: .milliseconds(20))
        batch.record(2, .failure(KafkaError(kind: .delivery, code: -192, message: "timed out")))
        batch.record(1, .success(.init(partition: 0, offset: 1)))
        let all = await results
        #expect(all.count == 3)
        #expect(all[2] == .failure(KafkaError(kind: .delivery, code: -192, message: "timed out")))
    }

    @Test func opaqueSlotsLeadBackToTheirBatchAndIndex() {
        let batch = KafkaDeliveryBatch(count: 4)
        let slot = KafkaDeliveryBatch.slot(from: batch.opaque(for: 3))
        #expect(slot.index == 3)
        #expect(slot.batch.takeUnretainedValue() === batch)
    }

    @Test func closingFailsWaitersAndSendersStillEnqueuing() async {
        let waiting = KafkaDeliveryBatch(count: 1)
        async let waited = waiting.wait()
        try? await Task.sleep(for: .milliseconds(20))
        waiting.failOutstanding(with: .shutdown)
        #expect(await waited == [.failure(.shutdown)])

        let enqueuing = KafkaDeliveryBatch(count: 2)
        enqueuing.record(0, .success(.init(partition: 0, offset: 0)))
        enqueuing.failOutstanding(with: .shutdown)
        #expect(await enqueuing.wait() == [.success(.init(partition: 0, offset: 0)), .failure(.shutdown)])
    }

    @Test func aClosedProducerStateRefusesNewBatches() {
        var machine = KafkaProducerStateMachine()
        let batch = KafkaDeliveryBatch(count: 1)
        if case .reject = machine.start(batch) { Issue.record("running producer refused a batch") }
        machine.beginClosing()
        #expect(machine.close().count == 1)
        if case .start = machine.start(KafkaDeliveryBatch(count: 1)) { Issue.record("closed producer accepted a batch") }
    }

    /// The handle is destroyed only once no sender is inside a produce call, and none enters
    /// after that is asked, whatever order the services stop in.
    @Test(.timeLimit(.minutes(1))) func theHandleIsDestroyedOnlyOnceNoSenderIsInside() async {
        var machine = KafkaProducerStateMachine()
        let first = machine.enterProduce(), second = machine.enterProduce()
        #expect(first && second)
        var action: KafkaProducerStateMachine.DestroyAction?
        var resumedBy = ""
        await withCheckedContinuation { (destroyer: CheckedContinuation<Void, Never>) in
            action = machine.requestDestroy(destroyer)
            let late = machine.enterProduce()
            #expect(!late, "no sender enters once destruction is asked")
            #expect(machine.isDestroyRequested)
            let stillInside = machine.leaveProduce()
            #expect(stillInside == nil, "one sender is still inside")
            if let last = machine.leaveProduce() {
                resumedBy = "the last sender"
                last.resume()
            } else if action == .destroyNow {
                destroyer.resume()
            }
        }
        #expect(action == .waitForSenders)
        #expect(resumedBy == "the last sender")
        // With nobody inside, destruction goes ahead at once.
        var idle = KafkaProducerStateMachine()
        await withCheckedContinuation { (destroyer: CheckedContinuation<Void, Never>) in
            let now = idle.requestDestroy(destroyer)
            #expect(now == .destroyNow)
            destroyer.resume()
        }
    }
}
