import Foundation
import Logging
import PaywireModels
import PostgresNIO

/// One payment intent with its active attempt, as stored. `object` renders the API object.
struct PaymentRecord: Sendable {
    var paymentId: String
    var merchantId: String
    var profileId: String?
    var status: PaymentStatus
    var amount: Int
    var currency: String
    var captureMethod: String
    var amountCapturable: Int
    var amountReceived: Int
    var merchantConnectorId: String?
    var connector: String?
    var activeAttemptId: String?
    var attemptCount: Int
    var card: CardSummary?
    var cardVault: CardVaultReference?
    /// The processor token for recurring charges, sealed as stored (opened only for the call).
    var sealedProcessorToken: String?
    var details: [String: JSONValue]
    var cancellationReason: String?
    var clientSecret: String
    var createdAt: Date
    var modifiedAt: Date
    var attempt: AttemptRecord?

    static let columns = """
        i.payment_id, i.merchant_id, i.profile_id, i.status, i.amount, i.currency, i.capture_method, i.amount_capturable,
        i.amount_received, i.merchant_connector_id, i.connector, i.active_attempt_id, i.attempt_count, i.card::text, i.card_vault::text,
        i.processor_token, i.details::text, i.cancellation_reason, i.client_secret, i.created_at, i.modified_at,
        a.attempt_id, a.status, a.connector_transaction_id, a.error_code, a.error_message, a.unified_code, a.unified_message,
        a.raw_decline_code, a.announced_processing, a.merchant_connector_id, a.connector, a.decline_code, a.network_advice_code,
        a.modification, a.modification_amount
        """

    /// Loads the intent (and its active attempt), optionally locking the intent row for the
    /// rest of the transaction: every change to a payment happens under that lock.
    static func load(_ paymentId: String, merchantId: String? = nil, forUpdate: Bool, on connection: PostgresConnection, logger: Logger) async throws -> PaymentRecord? {
        var query = PostgresQuery(unsafeSQL: """
            SELECT \(columns) FROM payments.payment_intents i
            LEFT JOIN payments.payment_attempts a ON a.attempt_id = i.active_attempt_id
            WHERE i.payment_id = $1 \(merchantId == nil ? "" : "AND i.merchant_id = $2") \(forUpdate ? "FOR UPDATE OF i" : "")
            """)
        query.binds.append(paymentId)
        if let merchantId { query.binds.append(merchantId) }
        let rows = try await connection.query(query, logger: logger)
        for try await row in rows {
            return try decode(row)
        }
        return nil
    }

    /// The payment an attempt belongs to, locked: one round trip for the outcome path.
    static func load(attemptId: String, on connection: PostgresConnection, logger: Logger) async throws -> PaymentRecord? {
        var query = PostgresQuery(unsafeSQL: """
            SELECT \(columns) FROM payments.payment_intents i
            LEFT JOIN payments.payment_attempts a ON a.attempt_id = i.active_attempt_id
            WHERE i.payment_id = (SELECT payment_id FROM payments.payment_attempts WHERE attempt_id = $1) FOR UPDATE OF i
            """)
        query.binds.append(attemptId)
        for try await row in try await connection.query(query, logger: logger) { return try decode(row) }
        return nil
    }

    /// Writes every mutable column and the rendered object in one statement, so a change costs
    /// one round trip and the stored object always matches the columns.
    func write(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("""
            UPDATE payments.payment_intents SET status = \(status.rawValue), capture_method = \(captureMethod),
                amount = \(amount), currency = \(currency), details = \(try PaymentOperations.json(JSONValue.object(details)))::jsonb,
                amount_capturable = \(amountCapturable), amount_received = \(amountReceived),
                merchant_connector_id = \(merchantConnectorId), connector = \(connector), active_attempt_id = \(activeAttemptId),
                attempt_count = \(attemptCount), card = \(try PaymentOperations.json(card))::jsonb, card_vault = \(try PaymentOperations.json(cardVault))::jsonb,
                processor_token = \(sealedProcessorToken), cancellation_reason = \(cancellationReason), modified_at = \(modifiedAt),
                object = \(try PaymentOperations.json(object))::jsonb
            WHERE payment_id = \(paymentId)
            """, logger: logger)
    }

    static func decode(_ row: PostgresRow) throws -> PaymentRecord {
        let cells = row.makeRandomAccess()
        func text(_ index: Int) throws -> String? { try cells[index].decode(String?.self) }
        func json<T: Decodable>(_ index: Int, _ type: T.Type) throws -> T? {
            guard let value = try text(index) else { return nil }
            return try PaywireJSON.decoder.decode(T.self, from: Data(value.utf8))
        }
        var record = PaymentRecord(
            paymentId: try cells[0].decode(String.self),
            merchantId: try cells[1].decode(String.self),
            profileId: try text(2),
            status: PaymentStatus(rawValue: try cells[3].decode(String.self)) ?? .processing,
            amount: try cells[4].decode(Int.self),
            currency: try cells[5].decode(String.self),
            captureMethod: try cells[6].decode(String.self),
            amountCapturable: try cells[7].decode(Int.self),
            amountReceived: try cells[8].decode(Int.self),
            merchantConnectorId: try text(9),
            connector: try text(10),
            activeAttemptId: try text(11),
            attemptCount: try cells[12].decode(Int.self),
            card: try json(13, CardSummary.self),
            cardVault: try json(14, CardVaultReference.self),
            sealedProcessorToken: try text(15),
            details: try json(16, [String: JSONValue].self) ?? [:],
            cancellationReason: try text(17),
            clientSecret: try cells[18].decode(String.self),
            createdAt: try cells[19].decode(Date.self),
            modifiedAt: try cells[20].decode(Date.self)
        )
        if let attemptId = try text(21) {
            record.attempt = AttemptRecord(
                attemptId: attemptId,
                status: try cells[22].decode(String.self),
                connectorTransactionId: try text(23),
                errorCode: try text(24),
                errorMessage: try text(25),
                unifiedCode: try text(26),
                unifiedMessage: try text(27),
                rawDeclineCode: try text(28),
                announcedProcessing: try cells[29].decode(Bool.self),
                merchantConnectorId: try cells[30].decode(String.self),
                connector: try cells[31].decode(String.self),
                declineCode: try text(32),
                networkAdviceCode: try text(33),
                modification: try text(34).flatMap(ConnectorResult.Modification.init(rawValue:)),
                modificationAmount: try cells[35].decode(Int?.self)
            )
        }
        return record
    }

    /// The payment as the API returns it and as webhooks carry it (Hyperswitch's field names;
    /// features Paywire does not have are present and null, so clients written against the
    /// seed's response parse ours).
    var object: JSONValue {
        var object: [String: JSONValue] = [:]
        // Echoed request fields first: the computed ones below always win.
        for key in Self.echoedFields { object[key] = details[key] ?? .null }
        let attempt = self.attempt
        let cardObject: JSONValue = card.map { card in
            .object([
                "last4": .string(card.last4), "card_isin": .string(card.bin),
                "card_exp_month": .string(card.expiryMonth), "card_exp_year": .string(card.expiryYear),
                "card_holder_name": card.holderName.map(JSONValue.string) ?? .null,
                "card_network": card.network.map(JSONValue.string) ?? .null,
                "card_type": .null, "card_issuer": .null, "card_issuing_country": .null, "card_extended_bin": .null,
                "payment_checks": .null, "authentication_data": .null,
            ])
        } ?? .null
        func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        let computed: [String: JSONValue] = [
            "payment_id": .string(paymentId),
            "merchant_id": .string(merchantId),
            "profile_id": optional(profileId),
            "status": .string(status.rawValue),
            "amount": .number(Double(amount)),
            "net_amount": .number(Double(amount)),
            "amount_capturable": .number(Double(amountCapturable)),
            "amount_received": .number(Double(amountReceived)),
            "currency": .string(currency),
            "capture_method": .string(captureMethod),
            "connector": optional(connector),
            "merchant_connector_id": optional(merchantConnectorId),
            "client_secret": .string(clientSecret),
            "created": .string(PaywireJSON.format(createdAt)),
            "updated": .string(PaywireJSON.format(modifiedAt)),
            "payment_method": card != nil || sealedProcessorToken != nil ? .string("card") : (details["payment_method"] ?? .null),
            "payment_method_data": card == nil ? .null : .object(["card": cardObject, "billing": details[PaymentCommand.paymentMethodBillingDetail] ?? .null]),
            "connector_transaction_id": optional(attempt?.connectorTransactionId),
            "error_code": optional(attempt?.errorCode),
            "error_message": optional(attempt?.errorMessage),
            "unified_code": optional(attempt?.unifiedCode),
            "unified_message": optional(attempt?.unifiedMessage),
            "issuer_error_code": optional(attempt?.rawDeclineCode),
            "decline_code": optional(attempt?.declineCode),
            "network_decline_code": optional(attempt?.rawDeclineCode),
            "network_advice_code": optional(attempt?.networkAdviceCode),
            "issuer_error_message": .null,
            "attempt_count": .number(Double(attemptCount)),
            "reference_id": optional(activeAttemptId),
            "cancellation_reason": optional(cancellationReason),
            "manual_retry_allowed": .bool(status == .failed && !(attempt?.declineCode.map(UnifiedDecline.hardDeclines.contains) ?? false)),
            "refunds": .null, "disputes": .null, "mandate_id": .null, "mandate_data": .null, "off_session": .null,
            "capture_on": .null, "payment_token": .null, "next_action": .null, "payment_experience": .null,
            "connector_label": .null, "business_country": .null, "business_label": .string("default"), "business_sub_label": .null,
            "allowed_payment_method_types": .null, "ephemeral_key": .null, "frm_message": .null, "feature_metadata": .null,
            "payment_link": .null, "surcharge_details": .null, "merchant_decision": .null,
            "incremental_authorization_allowed": .bool(false), "authorization_count": .null, "incremental_authorizations": .null,
            "external_authentication_details": .null, "external_3ds_authentication_attempted": .bool(false),
            "fingerprint": .null, "payment_method_id": .null, "payment_method_status": .null, "split_payments": .null,
            "frm_metadata": .null, "extended_authorization_applied": .null, "capture_before": .null, "order_tax_amount": .null,
            "connector_mandate_id": .null, "card_discovery": card == nil ? .null : .string("manual"),
            "force_3ds_challenge": .bool(false), "force_3ds_challenge_trigger": .bool(false), "shipping_cost": .null,
            // When the client secret stops working (the gateway checks it for publishable-key callers).
            "expires_on": details[PaymentCommand.sessionExpiryDetail]?.intValue.map { .string(PaywireJSON.format(createdAt.addingTimeInterval(Double($0)))) } ?? .null,
        ]
        object.merge(computed) { _, computed in computed }
        return .object(object)
    }

    /// Request fields a payment keeps and returns as given.
    static let echoedFields = [
        "customer_id", "customer", "description", "setup_future_usage", "shipping", "billing", "order_details",
        "email", "name", "phone", "return_url", "authentication_type", "statement_descriptor_name",
        "statement_descriptor_suffix", "payment_method_type", "metadata", "connector_metadata", "browser_info",
        "merchant_order_reference_id",
    ]
}

struct AttemptRecord: Sendable {
    var attemptId: String
    /// `pending` (outcome unknown), `authorized`, `charged`, `failed`, `voided`.
    var status: String
    var connectorTransactionId: String?
    var errorCode: String?
    var errorMessage: String?
    var unifiedCode: String?
    var unifiedMessage: String?
    var rawDeclineCode: String?
    var announcedProcessing: Bool
    var merchantConnectorId: String
    var connector: String
    /// Paywire's connector-neutral reason (`insufficient_funds`).
    var declineCode: String? = nil
    var networkAdviceCode: String? = nil
    /// A capture or cancel the processor took and has not yet said how it ended.
    var modification: ConnectorResult.Modification? = nil
    var modificationAmount: Int? = nil
}
