import CRdKafka

/// Admin and test-cluster C calls: CreateTopics, and librdkafka's in-process mock cluster.
extension RDKafkaClient {
    /// CreateTopics, waiting for the answer: each topic's name and its error, if any.
    func createTopics(_ topics: [KafkaTopicSpec], timeoutMilliseconds: Int32) throws -> [(String, KafkaError?)] {
        var errorText = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { newTopics.forEach { rd_kafka_NewTopic_destroy($0) } }
        for topic in topics {
            guard let newTopic = rd_kafka_NewTopic_new(topic.name, Int32(topic.partitions), Int32(topic.replicationFactor), &errorText, errorText.count) else {
                throw KafkaError(kind: .topicAdmin, message: "\(topic.name): \(String(cString: errorText))")
            }
            newTopics.append(newTopic)
        }
        let queue = rd_kafka_queue_new(handle)
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        rd_kafka_AdminOptions_set_request_timeout(options, timeoutMilliseconds, &errorText, errorText.count)
        rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMilliseconds, &errorText, errorText.count)
        newTopics.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_CreateTopics(handle, buffer.baseAddress, buffer.count, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, timeoutMilliseconds + 1000) else {
            throw KafkaError(
                kind: .topicAdmin,
                code: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue,
                message: "CreateTopics got no answer (a broker without the admin API must be given the topics up front): \(topics.map(\.name).joined(separator: ","))"
            )
        }
        defer { rd_kafka_event_destroy(event) }
        let eventError = rd_kafka_event_error(event)
        guard eventError == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(kind: .topicAdmin, rdError: eventError, context: "CreateTopics")
        }
        let result = rd_kafka_event_CreateTopics_result(event)
        var count = 0
        guard let topicResults = rd_kafka_CreateTopics_result_topics(result, &count) else { return [] }
        return (0..<count).map { index in
            let topicResult = topicResults[index]
            let name = String(cString: rd_kafka_topic_result_name(topicResult))
            let err = rd_kafka_topic_result_error(topicResult)
            return (name, err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(kind: .topicAdmin, rdError: err, context: name))
        }
    }

    /// A mock cluster of `brokers` brokers owned by this client (a producer made for it).
    func makeMockCluster(brokers: Int) throws -> RDKafkaMockCluster {
        guard let cluster = rd_kafka_mock_cluster_new(handle, Int32(brokers)) else {
            throw KafkaError(kind: .clientCreation, message: "rd_kafka_mock_cluster_new failed")
        }
        return RDKafkaMockCluster(pointer: cluster)
    }
}

struct RDKafkaMockCluster: @unchecked Sendable {
    fileprivate let pointer: OpaquePointer

    var bootstrapServers: String { String(cString: rd_kafka_mock_cluster_bootstraps(pointer)) }

    func createTopic(_ name: String, partitions: Int, replicationFactor: Int) throws {
        let err = rd_kafka_mock_topic_create(pointer, name, Int32(partitions), Int32(replicationFactor))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(kind: .topicAdmin, rdError: err, context: name) }
    }

    /// Down: the broker drops its connections and refuses new ones (its partitions keep it as
    /// leader, so they are unavailable until it is up again). Ids are 1...brokers.
    func setBroker(_ id: Int32, up: Bool) throws {
        let err = up ? rd_kafka_mock_broker_set_up(pointer, id) : rd_kafka_mock_broker_set_down(pointer, id)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(kind: .topicAdmin, rdError: err, context: "broker \(id)") }
    }

    /// Makes broker `id` the coordinator of consumer group `group`.
    func setGroupCoordinator(_ group: String, broker id: Int32) throws {
        let err = rd_kafka_mock_coordinator_set(pointer, "group", group, id)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(kind: .topicAdmin, rdError: err, context: "coordinator of \(group)") }
    }

    func destroy() {
        rd_kafka_mock_cluster_destroy(pointer)
    }
}
