public struct KafkaTopicPartition: Sendable, Hashable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }
}

/// A message copied out of librdkafka's buffers, so it outlives the poll that returned it.
public struct KafkaConsumerMessage: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader]) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
    }

    public var topicPartition: KafkaTopicPartition { KafkaTopicPartition(topic: topic, partition: partition) }

    public struct Position: Hashable, Sendable {
        var topic: String
        var partition: Int32
        var offset: Int64
    }

    var position: Position { Position(topic: topic, partition: partition, offset: offset) }
    public var keyString: String? { key.map { String(decoding: $0, as: UTF8.self) } }

    public func header(_ name: String) -> [UInt8]? { headers.first { $0.name == name }?.value }
}

public enum KafkaRebalanceEvent: Sendable, Equatable {
    case assigned([KafkaTopicPartition])
    case revoked([KafkaTopicPartition])
}

/// The first offset still held and the offset the next message will get, for one partition.
public struct KafkaWatermarks: Sendable, Equatable {
    public var low: Int64
    public var high: Int64

    public init(low: Int64, high: Int64) {
        self.low = low
        self.high = high
    }
}
