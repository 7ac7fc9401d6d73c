import Crypto
import Foundation
import PaywireKafka
import PaywireModels
import PaywireRuntime
import Testing

/// The four signers are one scheme covering different things. Their bytes are pinned here,
/// computed from the scheme's definition (HKDF-SHA256 of the encryption key under the use's label,
/// HMAC-SHA256, lowercase hex) rather than through it: during a rolling upgrade old and new
/// replicas check each other's signatures, and stored Idempotency-Key digests must still match.
@Suite struct SignatureSchemeTests {
    let material = Data((0..<32).map { UInt8($0) })
    var encryptionKey: String { material.base64EncodedString() }

    func expected(label: String, covering bytes: Data) -> String {
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: material), info: Data(label.utf8), outputByteCount: 32)
        return Hex.encode(HMAC<SHA256>.authenticationCode(for: bytes, using: key))
    }

    @Test func eachSignerIsTheSchemeOverWhatItCovers() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let vault = Dictionary(uniqueKeysWithValues: try CardVaultSigner(encryptionKey: encryptionKey)
            .headers(method: "post", host: "GW:8090", path: "/internal/card-vault/cvt_1/take", token: "cvt_1", now: now))
        #expect(vault[CardVaultSigner.timestampHeader] == "1800000000")
        #expect(vault[CardVaultSigner.signatureHeader] == expected(label: "paywire card vault take v1",
                                                                   covering: Data("POST\ngw:8090\n/internal/card-vault/cvt_1/take\ncvt_1\n1800000000".utf8)))

        let body = Array(#"{"a":1}"#.utf8)
        let api = Dictionary(uniqueKeysWithValues: try InternalAPISigner(encryptionKey: encryptionKey)
            .headers(method: "get", pathAndQuery: "/internal/events?limit=1", body: body, now: now))
        let digest = Hex.encode(SHA256.hash(data: Data(body)))
        #expect(api[InternalAPISigner.signatureHeader] == expected(label: "paywire internal api v1",
                                                                   covering: Data("GET\n/internal/events?limit=1\n1800000000\n\(digest)".utf8)))

        #expect(try InternalRequestSigner(encryptionKey: encryptionKey).signature(for: "merchant:key:digest")
            == expected(label: "paywire internal requests v1", covering: Data("merchant:key:digest".utf8)))

        let signed = try CommandSigner(environment: ["PAYWIRE_ENCRYPTION_KEY": encryptionKey])
            .signed(KafkaProducerMessage(topic: "t", key: "k1", value: Array("v".utf8)))
        let covered = Data([0, 0, 0, 1]) + Data("t".utf8) + Data([0, 0, 0, 2]) + Data("k1".utf8) + Data("v".utf8)
        #expect(signed.headers.first { $0.name == CommandSigner.header }.map { String(decoding: $0.value, as: UTF8.self) }
            == expected(label: "paywire kafka commands v1", covering: covered))
    }

    @Test func aSignatureIsCheckedWhole() throws {
        let scheme = try SignatureScheme(purpose: "test", encryptionKey: encryptionKey)
        let signature = scheme.signature(of: Data("covered".utf8))
        #expect(scheme.isValid(signature, of: Data("covered".utf8)))
        #expect(scheme.isValid(signature.uppercased(), of: Data("covered".utf8)), "hex in either case")
        #expect(!scheme.isValid(signature, of: Data("covered!".utf8)))
        #expect(!scheme.isValid(String(signature.dropLast(2)), of: Data("covered".utf8)), "a prefix is not a signature")
        #expect(!scheme.isValid(String(signature.dropLast()) + "g", of: Data("covered".utf8)))
        #expect(!scheme.isValid(nil, of: Data("covered".utf8)))
        #expect(!(try SignatureScheme(purpose: "other", encryptionKey: encryptionKey)).isValid(signature, of: Data("covered".utf8)), "another use's key")
        #expect(throws: ServiceConfiguration.ConfigurationError.self) { try SignatureScheme(purpose: "test", encryptionKey: "c2hvcnQ=") }
    }

    @Test func aTimestampedSignatureHoldsOnlyWithinItsTolerance() throws {
        let scheme = try SignatureScheme(purpose: "test", encryptionKey: encryptionKey)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let covering = { (time: Int) in Data("x\n\(time)".utf8) }
        let signed = scheme.timestamped(now: now, covering: covering)
        #expect(scheme.isValid(signed.signature, timestamp: signed.timestamp, tolerance: 30, now: now.addingTimeInterval(30), covering: covering))
        #expect(!scheme.isValid(signed.signature, timestamp: signed.timestamp, tolerance: 30, now: now.addingTimeInterval(31), covering: covering))
        #expect(!scheme.isValid(signed.signature, timestamp: signed.timestamp, tolerance: 30, now: now.addingTimeInterval(-31), covering: covering), "from the future")
        #expect(!scheme.isValid(signed.signature, timestamp: "1800000001", tolerance: 30, now: now, covering: covering), "the time is covered")
        #expect(!scheme.isValid(signed.signature, timestamp: "soon", tolerance: 30, now: now, covering: covering))
    }

    @Test func hexDecodesWhatItEncodesAndNothingElse() {
        let bytes: [UInt8] = [0, 1, 0x7f, 0x80, 0xab, 0xff]
        #expect(Hex.decode(Hex.encode(bytes)) == bytes)
        #expect(Hex.decode("ABff") == [0xab, 0xff])
        #expect(Hex.decode("") == [])
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Hex.decode("+1") == nil)
    }
}
