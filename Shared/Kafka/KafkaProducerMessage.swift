import Foundation

public struct KafkaHeader: Sendable, Equatable {
    public var name: String
    public var value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }

    public init(name: String, string: String) {
        self.init(name: name, value: Array(string.utf8))
    }
}

public struct KafkaProducerMessage: Sendable {
    public var topic: String
    /// Messages with one key go to one partition, which keeps them in order.
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// A partition named by the sender (a reply to the one its reader holds) instead of the one
    /// the key hashes to.
    public var partition: Int32?

    public init(topic: String, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader] = [], partition: Int32? = nil) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
    }

    public init(topic: String, key: String?, value: [UInt8], headers: [KafkaHeader] = [], partition: Int32? = nil) {
        self.init(topic: topic, key: key.map { Array($0.utf8) }, value: value, headers: headers, partition: partition)
    }
}

/// What the broker acknowledged: with `acks=all` the message is on every in-sync replica.
public struct KafkaDeliveryReport: Sendable, Equatable {
    public var partition: Int32
    public var offset: Int64
}
