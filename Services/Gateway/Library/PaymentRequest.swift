import Foundation
import PaywireModels
import PaywireRuntime

/// A payments API body, checked field by field. Card data is split off here: it goes to the
/// card vault, and only its summary (last4, BIN, expiry, network, holder) travels on.
struct PaymentRequest {
    var command: PaymentCommand
    var card: CardDetails?
    var routing: Routing?

    enum Routing: Equatable {
        case connector(String)
        case account(String)
    }

    /// Fields the gateway interprets; every other field is kept as the payment's details.
    static let interpretedFields: Set<String> = [
        "amount", "currency", "confirm", "capture_method", "amount_to_capture", "profile_id", "merchant_id",
        "routing", "payment_method_data", "recurring_details", "payment_id",
    ]

    static func create(_ body: RequestObject, merchantId: String, now: Date = Date()) throws -> PaymentRequest {
        var command = PaymentCommand(operation: .create, paymentId: "", merchantId: merchantId)
        guard let amount = try body.integer("amount", range: 1...InputLimits.maxAmount) else {
            throw APIError.invalid("amount", "is required", code: "IR_05")
        }
        command.amount = amount
        let currency = try body.requiredString("currency", maxLength: 3)
        guard Currency.minorUnits(currency) != nil else {
            throw APIError.invalid("currency", "must be an ISO 4217 currency code in capitals, e.g. USD, EUR, JPY")
        }
        command.currency = currency
        command.confirm = try body.bool("confirm") ?? false
        command.captureMethod = try captureMethod(body)
        if let toCapture = try body.integer("amount_to_capture", range: 1...InputLimits.maxAmount) {
            guard toCapture <= amount else { throw APIError.invalid("amount_to_capture", "must not exceed amount") }
            command.amountToCapture = toCapture
        }
        command.profileId = try body.string("profile_id", maxLength: 64)
        if let profileId = command.profileId { try InputText.checkIdentifierText(profileId, field: "profile_id") }
        var request = PaymentRequest(command: command, card: nil, routing: try routing(body))
        try request.readPaymentMethod(body, now: now)
        if request.command.confirm == true && request.card == nil && request.command.processorPaymentToken == nil {
            throw APIError.invalid("payment_method_data", "is required when confirm is true", code: "IR_04")
        }
        request.command.details = .object(try details(body))
        return request
    }

    /// The free-form fields a payment keeps and returns (customer, billing, metadata …), checked;
    /// `payment_method_data.billing` is kept beside them and returned inside `payment_method_data`.
    static func details(_ body: RequestObject) throws -> [String: JSONValue] {
        try body.checkFreeFormSize(except: interpretedFields.union(["payment_method_data"]), field: "metadata")
        var details = body.fields.filter { !interpretedFields.contains($0.key) }
        for key in ["customer", "billing", "shipping", "metadata", "browser_info", "connector_metadata"] {
            _ = try body.anyObject(key)
        }
        _ = try body.array("order_details")
        for key in ["customer_id", "description", "return_url", "email", "name", "phone", "merchant_order_reference_id"] {
            _ = try body.string(key, maxLength: 2048)
        }
        if let method = try body.string("payment_method", maxLength: 32), method != "card" {
            throw APIError.invalid("payment_method", "only card is supported")
        }
        _ = try body.integer("session_expiry", range: sessionExpiryRange)
        details.removeValue(forKey: "payment_method_data")
        details.removeValue(forKey: "client_secret")
        if let billing = try body.object("payment_method_data")?.anyObject("billing") {
            let size = (try? PaywireJSON.encoder.encode(billing).count) ?? 0
            guard size <= InputLimits.freeFormBytes else { throw APIError.invalid("payment_method_data.billing", "takes \(size) bytes; at most \(InputLimits.freeFormBytes) are kept") }
            details[PaymentCommand.paymentMethodBillingDetail] = billing
        }
        return details
    }

    /// Seconds a client secret works after creation (Hyperswitch's default 900).
    static let sessionExpiryRange = 1...7_776_000

    /// `POST /payments/{id}` before confirm: amount, currency, capture method and the free-form
    /// fields. A payment method is given with confirm (the card goes to the vault only then).
    static func update(_ body: RequestObject, merchantId: String, paymentId: String) throws -> PaymentCommand {
        var command = PaymentCommand(operation: .update, paymentId: paymentId, merchantId: merchantId)
        command.amount = try body.integer("amount", range: 1...InputLimits.maxAmount)
        if let currency = try body.string("currency", maxLength: 3) {
            guard Currency.minorUnits(currency) != nil else { throw APIError.invalid("currency", "must be an ISO 4217 currency code in capitals, e.g. USD, EUR, JPY") }
            command.currency = currency
        }
        command.captureMethod = try body.has("capture_method") ? captureMethod(body) : nil
        if try body.bool("confirm") == true { throw APIError.invalid("confirm", "confirm with POST /payments/{payment_id}/confirm") }
        for field in ["profile_id", "merchant_id", "routing", "recurring_details", "amount_to_capture", "payment_id", "session_expiry"] where body.has(field) {
            throw APIError.invalid(field, "cannot be changed by an update")
        }
        if let data = try body.object("payment_method_data"), data.has("card") {
            throw APIError.invalid("payment_method_data.card", "give the card with POST /payments/{payment_id}/confirm")
        }
        var details = try Self.details(body)
        details.removeValue(forKey: "confirm")
        command.details = .object(details)
        return command
    }

    static func confirm(_ body: RequestObject, merchantId: String, paymentId: String, now: Date = Date()) throws -> PaymentRequest {
        var command = PaymentCommand(operation: .confirm, paymentId: paymentId, merchantId: merchantId)
        command.captureMethod = try body.has("capture_method") ? captureMethod(body) : nil
        var request = PaymentRequest(command: command, card: nil, routing: try routing(body))
        try request.readPaymentMethod(body, now: now)
        if let billing = try body.object("payment_method_data")?.anyObject("billing") {
            request.command.details = .object([PaymentCommand.paymentMethodBillingDetail: billing])
        }
        return request
    }

    static func captureMethod(_ body: RequestObject) throws -> String {
        let method = try body.string("capture_method", maxLength: 32) ?? "automatic"
        guard ["automatic", "manual"].contains(method) else { throw APIError.invalid("capture_method", "must be automatic or manual") }
        return method
    }

    /// `routing: {type: "single", data: "<connector>"}` (or `data: {connector, merchant_connector_id}`).
    static func routing(_ body: RequestObject) throws -> Routing? {
        guard let routing = try body.object("routing") else { return nil }
        let type = try routing.requiredString("type", maxLength: 32)
        guard type == "single" else { throw APIError.invalid("routing.type", "only single is supported") }
        if case .string(let name)? = routing.fields["data"] {
            guard !name.isEmpty, name.count <= 64 else { throw APIError.invalid("routing.data", "must name a connector") }
            return .connector(name)
        }
        guard let data = try routing.object("data") else { throw APIError.invalid("routing.data", "is required", code: "IR_05") }
        if let id = try data.string("merchant_connector_id", maxLength: 64) { return .account(id) }
        return .connector(try data.requiredString("connector", maxLength: 64))
    }

    mutating func readPaymentMethod(_ body: RequestObject, now: Date) throws {
        // Billing alone (no card yet) is kept as a detail; the card comes with confirm.
        if let data = try body.object("payment_method_data"), data.has("card") || !data.has("billing") {
            guard let card = try data.object("card") else { throw APIError.invalid("payment_method_data.card", "is required (only cards are supported)", code: "IR_05") }
            let details = try Self.card(card, now: now)
            self.card = details
            command.card = details.summary
        }
        if let recurring = try body.object("recurring_details") {
            let type = try recurring.requiredString("type", maxLength: 64)
            guard type == "processor_payment_token" else { throw APIError.invalid("recurring_details.type", "only processor_payment_token is supported") }
            guard let data = try recurring.object("data") else { throw APIError.invalid("recurring_details.data", "is required", code: "IR_05") }
            command.processorPaymentToken = try data.requiredString("processor_payment_token", maxLength: 255)
            guard card == nil else { throw APIError.invalid("recurring_details", "give either payment_method_data or recurring_details") }
        }
    }

    static func card(_ card: RequestObject, now: Date) throws -> CardDetails {
        let number = try card.requiredString("card_number", maxLength: 23).filter { $0 != " " && $0 != "-" }
        // Messages never repeat the number.
        guard (12...19).contains(number.count), number.allSatisfy(\.isASCII), number.allSatisfy(\.isNumber), CardDetails.passesLuhn(number) else {
            throw APIError.invalid(card.name("card_number"), "is not a valid card number")
        }
        let monthText = try card.requiredString("card_exp_month", maxLength: 2)
        guard let month = Int(monthText), (1...12).contains(month) else { throw APIError.invalid(card.name("card_exp_month"), "must be 01 to 12") }
        let yearText = try card.requiredString("card_exp_year", maxLength: 4)
        guard var year = Int(yearText), yearText.count == 2 || yearText.count == 4 else {
            throw APIError.invalid(card.name("card_exp_year"), "must be a year (YY or YYYY)")
        }
        if year < 100 { year += 2000 }
        let calendar = Calendar(identifier: .gregorian)
        let current = calendar.dateComponents(in: TimeZone(identifier: "UTC")!, from: now)
        if year < current.year! || (year == current.year! && month < current.month!) {
            throw APIError.invalid(card.name("card_exp_year"), "the card has expired")
        }
        let cvc = try card.requiredString("card_cvc", maxLength: 4)
        guard (3...4).contains(cvc.count), cvc.allSatisfy(\.isNumber) else { throw APIError.invalid(card.name("card_cvc"), "must be 3 or 4 digits") }
        let holder = try card.string("card_holder_name", maxLength: 255)
        return CardDetails(number: number, expiryMonth: String(format: "%02d", month), expiryYear: String(year), cvc: cvc, holderName: holder)
    }
}
