import CRdKafka
import Foundation

/// The producer's C calls: topic handles, `rd_kafka_produceva` with its arguments built on the
/// stack, the poll that serves delivery reports, flush and purge.
extension RDKafkaClient {
    /// A topic's librdkafka handle, owned by the client (destroyed with it).
    struct TopicHandle: @unchecked Sendable {
        fileprivate let pointer: OpaquePointer
    }

    enum ProduceOutcome {
        case queued
        /// librdkafka's local queue is full; it drains as delivery reports are served.
        case queueFull
        case failed(KafkaError)
    }

    func topicHandle(_ name: String) -> TopicHandle? {
        topicHandles.withLockedValue { handles in
            if let handle = handles[name] { return TopicHandle(pointer: handle.value) }
            guard let handle = rd_kafka_topic_new(self.handle, name, nil) else { return nil }
            handles[name] = UnsafeSendable(handle)
            return TopicHandle(pointer: handle)
        }
    }

    /// Queues one message; `opaque` comes back with its delivery report.
    func produce(_ message: KafkaProducerMessage, topic: TopicHandle?, opaque: UnsafeMutableRawPointer?) -> ProduceOutcome {
        guard let topic else { return .failed(KafkaError(kind: .produce, rdError: rd_kafka_last_error(), context: message.topic)) }
        // Header names and values must outlive rd_kafka_produceva, which copies them.
        let headerNames = message.headers.map { strdup($0.name) }
        defer { headerNames.forEach { free($0) } }
        let code: rd_kafka_resp_err_t = message.value.withUnsafeBytes { value in
            Self.withKey(message.key) { keyPointer, keyCount in
                Self.withHeaderValues(message.headers) { headerValues in
                    // Built on the stack: one produce is one call, no allocation for the arguments.
                    withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 6 + message.headers.count) { values in
                        var count = 0
                        func append(_ configure: (inout rd_kafka_vu_t) -> Void) {
                            var entry = rd_kafka_vu_t()
                            configure(&entry)
                            values.initializeElement(at: count, to: entry)
                            count += 1
                        }
                        append { $0.vtype = RD_KAFKA_VTYPE_RKT; $0.u.rkt = topic.pointer }
                        append {
                            $0.vtype = RD_KAFKA_VTYPE_VALUE
                            $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress)
                            $0.u.mem.size = value.count
                        }
                        if let keyPointer {
                            append {
                                $0.vtype = RD_KAFKA_VTYPE_KEY
                                $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: keyPointer)
                                $0.u.mem.size = keyCount
                            }
                        }
                        if let partition = message.partition {
                            append { $0.vtype = RD_KAFKA_VTYPE_PARTITION; $0.u.i32 = partition }
                        }
                        append { $0.vtype = RD_KAFKA_VTYPE_MSGFLAGS; $0.u.i = RD_KAFKA_MSG_F_COPY }
                        append { $0.vtype = RD_KAFKA_VTYPE_OPAQUE; $0.u.ptr = opaque }
                        for index in message.headers.indices {
                            append {
                                $0.vtype = RD_KAFKA_VTYPE_HEADER
                                $0.u.header.name = UnsafePointer(headerNames[index])
                                $0.u.header.val = headerValues[index]
                                $0.u.header.size = message.headers[index].value.count
                            }
                        }
                        defer { values.baseAddress!.deinitialize(count: count) }
                        guard let error = rd_kafka_produceva(handle, values.baseAddress, count) else {
                            return RD_KAFKA_RESP_ERR_NO_ERROR
                        }
                        let code = rd_kafka_error_code(error)
                        rd_kafka_error_destroy(error)
                        return code
                    }
                }
            }
        }
        switch code {
        case RD_KAFKA_RESP_ERR_NO_ERROR: return .queued
        case RD_KAFKA_RESP_ERR__QUEUE_FULL: return .queueFull
        default: return .failed(KafkaError(kind: .produce, rdError: code, context: message.topic))
        }
    }

    private static func withKey<R>(_ key: [UInt8]?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
        guard let key else { return body(nil, 0) }
        return key.withUnsafeBytes { body($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), $0.count) }
    }

    private static func withHeaderValues<R>(_ headers: [KafkaHeader], _ body: ([UnsafeRawPointer?]) -> R) -> R {
        if headers.isEmpty { return body([]) }
        let buffers = headers.map { header -> UnsafeMutableRawBufferPointer in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, header.value.count), alignment: 1)
            buffer.copyBytes(from: header.value)
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        return body(buffers.map { UnsafeRawPointer($0.baseAddress) })
    }

    /// Serves delivery reports (and logs, errors); blocks up to the timeout.
    func serveEvents(timeoutMilliseconds: Int32) {
        rd_kafka_poll(handle, timeoutMilliseconds)
    }

    /// Ends a `serveEvents` wait under way at once.
    func wakeEventServer() {
        rd_kafka_yield(handle)
    }

    /// Waits until every queued message is acknowledged or failed, up to the timeout.
    func flush(timeoutMilliseconds: Int32) {
        rd_kafka_flush(handle, timeoutMilliseconds)
    }

    /// Drops whatever is still queued or in flight; each message's sender hears of it through its
    /// delivery report, which the poll thread serves.
    func purgeAndFlush() {
        rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        rd_kafka_flush(handle, 1000)
    }
}
