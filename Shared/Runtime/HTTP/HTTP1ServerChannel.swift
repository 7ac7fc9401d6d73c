import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// Hummingbird's HTTP/1 channel with the connection rules of the request's own HTTP version.
/// Hummingbird turns each request into a version-less `HTTPRequest`, answers as HTTP/1.1 and keeps
/// the connection unless the request says exactly `Connection: close`, so an HTTP/1.0 client that
/// did not ask for keep-alive waited out the idle timeout (60 s) for the end of its answer. A
/// handler below that conversion sees the version: a request that does not keep the connection
/// (HTTP/1.0 without `keep-alive`, or any `close` token) is answered with `Connection: close` and
/// its connection closed once the answer is written; HTTP/1.0 answers carry that version, so
/// their bodies are framed as HTTP/1.0 allows.
public struct HTTP1ServerChannel: ServerChildChannel, HTTPChannelHandler {
    public typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel

    public init(responder: @escaping HTTPChannelHandler.Responder, configuration: HTTP1Channel.Configuration) {
        inner = HTTP1Channel(responder: responder, configuration: configuration)
    }

    public var responder: HTTPChannelHandler.Responder { inner.responder }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let decoder = try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(ConnectionPersistenceHandler(), position: .after(decoder))
            return value
        }
    }

    public func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// The HTTP/1 server every Paywire listener runs (see `HTTP1ServerChannel`).
    public static func paywireHTTP1(idleTimeout: Duration) -> HTTPServerBuilder {
        .init { responder in HTTP1ServerChannel(responder: responder, configuration: .init(idleTimeout: .init(idleTimeout))) }
    }
}

/// Between NIO's HTTP/1 decoder and the conversion to version-less HTTP types: remembers, per
/// request in order, the version and whether the connection persists, and applies both to the
/// answer.
final class ConnectionPersistenceHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private struct Pending {
        var version: HTTPVersion
        var keepAlive: Bool
    }

    /// Requests read and not yet answered, oldest first (HTTP/1 answers in request order).
    private var pending: [Pending] = []
    private var closeAfterAnswer = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        let keepAlive = head.isKeepAlive
        pending.append(Pending(version: head.version, keepAlive: keepAlive))
        // Hummingbird stops reading the connection after a request that says exactly "close".
        if !keepAlive { head.headers.replaceOrAdd(name: "connection", value: "close") }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status.code >= 200:
            guard let request = pending.first else { return context.write(data, promise: promise) }
            var keepAlive = request.keepAlive
            if request.version.major == 1 && request.version.minor == 0 {
                head.version = .http1_0
                // An HTTP/1.0 body without a length ends when the connection does.
                if !head.headers.contains(name: "content-length") { keepAlive = false }
                if keepAlive { head.headers.replaceOrAdd(name: "connection", value: "keep-alive") }
            }
            if !keepAlive {
                head.headers.replaceOrAdd(name: "connection", value: "close")
                closeAfterAnswer = true
            }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end:
            if !pending.isEmpty { pending.removeFirst() }
            guard closeAfterAnswer else { return context.write(data, promise: promise) }
            let written = promise ?? context.eventLoop.makePromise()
            context.writeAndFlush(data, promise: written)
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        default:
            context.write(data, promise: promise)
        }
    }
}
