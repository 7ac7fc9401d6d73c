import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import PaywireRuntime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP/1 server every service runs, spoken to over a raw socket: each request's version and
/// `Connection` header decide whether its connection stays open.
@Suite(.timeLimit(.minutes(2)))
struct HTTP1ServerChannelTests {
    /// A server with one route on an ephemeral loopback port, for the length of `body`.
    func withServer(_ body: @Sendable (Int) async throws -> Void) async throws {
        let router = Router()
        router.get("/ping") { _, _ in "pong" }
        let port = NIOLockedValueBox<Int?>(nil)
        let app = Application(
            router: router,
            server: .paywireHTTP1(idleTimeout: .seconds(60)),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLockedValue { $0 = channel.localAddress?.port } },
            logger: Logger(label: "http1-test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        let server = Task { try await app.runService(gracefulShutdownSignals: []) }
        defer { server.cancel() }
        var bound: Int?
        while bound == nil {
            try await Task.sleep(for: .milliseconds(10))
            bound = port.withLockedValue { $0 }
        }
        try await body(bound!)
    }

    /// A blocking TCP connection with a read timeout far past anything but the server's own
    /// 60 s idle timeout, so "closed by the server" cannot be confused with "kept open". Its
    /// blocking calls run on a thread of their own, off the pool the server's handlers run on.
    final class RawConnection: @unchecked Sendable {
        let socket: Int32

        init(port: Int) throws {
            socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var timeout = timeval(tv_sec: 30, tv_usec: 0)
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard result == 0 else { throw POSIXFailure(call: "connect") }
        }

        deinit { close(socket) }

        func send(_ text: String) {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, 0) }
        }

        /// Reads one answer whose body is `pong` (the only route), headers lowercased.
        func readAnswer() async -> String {
            await offPool { self.readAnswerBlocking() }
        }

        func closedByServer() async -> Bool {
            await offPool { self.closedByServerBlocking() }
        }

        private func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
            await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: body()) }
            }
        }

        private func readAnswerBlocking() -> String {
            var text = ""
            while !text.hasSuffix("pong") {
                guard let chunk = readChunk(), !chunk.isEmpty else { break }
                text += chunk
            }
            return text.lowercased()
        }

        /// Whether the server closed the connection (end of stream) rather than holding it.
        private func closedByServerBlocking() -> Bool {
            guard let chunk = readChunk() else { return false }
            return chunk.isEmpty
        }

        /// Bytes read, "" at end of stream, nil when the read timed out.
        private func readChunk() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count < 0 { return nil }
            return String(decoding: buffer.prefix(count), as: UTF8.self)
        }
    }

    struct POSIXFailure: Error { let call: String }

    @Test func anHTTP10RequestWithoutKeepAliveIsAnsweredAsHTTP10AndItsConnectionClosed() async throws {
        try await withServer { port in
            let connection = try RawConnection(port: port)
            connection.send("GET /ping HTTP/1.0\r\nHost: x\r\n\r\n")
            let answer = await connection.readAnswer()
            #expect(answer.hasPrefix("http/1.0 200"), "\(answer)")
            #expect(answer.contains("connection: close"), "\(answer)")
            #expect(await connection.closedByServer())
        }
    }

    @Test func anHTTP10RequestAskingForKeepAliveKeepsItsConnection() async throws {
        try await withServer { port in
            let connection = try RawConnection(port: port)
            connection.send("GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let first = await connection.readAnswer()
            #expect(first.hasPrefix("http/1.0 200") && first.contains("connection: keep-alive"), "\(first)")
            connection.send("GET /ping HTTP/1.0\r\n\r\n")
            let second = await connection.readAnswer()
            #expect(second.hasPrefix("http/1.0 200") && second.contains("connection: close"), "\(second)")
            #expect(await connection.closedByServer())
        }
    }

    @Test func http11KeepsItsConnectionUntilACloseTokenAmongOthers() async throws {
        try await withServer { port in
            let connection = try RawConnection(port: port)
            connection.send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            let first = await connection.readAnswer()
            #expect(first.hasPrefix("http/1.1 200") && !first.contains("connection: close"), "\(first)")
            connection.send("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: TE, Close\r\n\r\n")
            let second = await connection.readAnswer()
            #expect(second.hasPrefix("http/1.1 200") && second.contains("connection: close"), "\(second)")
            #expect(await connection.closedByServer())
        }
    }
}
