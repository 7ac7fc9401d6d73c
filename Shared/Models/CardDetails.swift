/// Card data on its way to a connector. It lives only in memory (the gateway's card vault, then
/// the connector call); it is never stored, logged or put on Kafka, and its descriptions show no
/// more digits than may be stored.
public struct CardDetails: Sendable, Codable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let number: String
    public let expiryMonth: String
    public let expiryYear: String
    public let cvc: String
    public let holderName: String?

    public init(number: String, expiryMonth: String, expiryYear: String, cvc: String, holderName: String?) {
        self.number = number
        self.expiryMonth = expiryMonth
        self.expiryYear = expiryYear
        self.cvc = cvc
        self.holderName = holderName
    }

    enum CodingKeys: String, CodingKey {
        case number = "card_number"
        case expiryMonth = "card_exp_month"
        case expiryYear = "card_exp_year"
        case cvc = "card_cvc"
        case holderName = "card_holder_name"
    }

    public var last4: String { String(number.suffix(4)) }
    /// The issuer identification number: the first six digits.
    public var bin: String { String(number.prefix(6)) }

    public var description: String { "card ****\(last4)" }
    public var debugDescription: String { description }
    // `dump` and string interpolation of containing values go through the mirror.
    public var customMirror: Mirror { Mirror(self, children: ["last4": last4]) }

    /// What may be stored and returned: last4, BIN, expiry, network, holder name.
    public var summary: CardSummary {
        CardSummary(last4: last4, bin: bin, expiryMonth: expiryMonth, expiryYear: expiryYear, holderName: holderName, network: CardSummary.network(forNumber: number))
    }

    /// Luhn check: catches typing errors before a processor sees the number.
    public static func passesLuhn(_ digits: String) -> Bool {
        var sum = 0
        for (index, character) in digits.reversed().enumerated() {
            guard let digit = character.wholeNumberValue else { return false }
            if index % 2 == 1 {
                let doubled = digit * 2
                sum += doubled > 9 ? doubled - 9 : doubled
            } else {
                sum += digit
            }
        }
        return sum % 10 == 0
    }
}

/// The part of a card Paywire keeps (Hyperswitch's `payment_method_data.card` fields).
public struct CardSummary: Sendable, Codable, Equatable {
    public var last4: String
    public var bin: String
    public var expiryMonth: String
    public var expiryYear: String
    public var holderName: String?
    public var network: String?

    public init(last4: String, bin: String, expiryMonth: String, expiryYear: String, holderName: String?, network: String?) {
        self.last4 = last4
        self.bin = bin
        self.expiryMonth = expiryMonth
        self.expiryYear = expiryYear
        self.holderName = holderName
        self.network = network
    }

    enum CodingKeys: String, CodingKey {
        case last4
        case bin = "card_isin"
        case expiryMonth = "card_exp_month"
        case expiryYear = "card_exp_year"
        case holderName = "card_holder_name"
        case network = "card_network"
    }

    public static func network(forNumber number: String) -> String? {
        guard let first = number.first else { return nil }
        let two = Int(number.prefix(2)) ?? 0
        let four = Int(number.prefix(4)) ?? 0
        switch first {
        case "4": return "Visa"
        case "5" where (51...55).contains(two): return "Mastercard"
        case "2" where (2221...2720).contains(four): return "Mastercard"
        case "3" where two == 34 || two == 37: return "AmericanExpress"
        case "6" where number.hasPrefix("6011") || two == 65: return "Discover"
        default: return nil
        }
    }
}
