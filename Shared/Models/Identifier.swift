/// The one generator of random ids and secrets: letters and digits from the system's secure
/// random source, in Hyperswitch's `prefix_…` shapes (`pay_…`, `pro_…`, `whe_…`).
public enum Identifier {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

    public static func random(_ length: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }

    public static func make(_ prefix: String) -> String { "\(prefix)_\(random(20))" }

    public static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}
