import Foundation
import Hummingbird
import Logging
import PaywireModels
import PaywireRuntime
import PostgresNIO

/// The scheduler's internal API, for the gateway (which authenticates and scopes the merchant,
/// then asks here, signed): `GET /internal/recovery/{id}` — the job, every attempt with its raw
/// decline and advice codes, the next run. With `PAYWIRE_RECOVERY_CLOCK_CONTROL=true` (tests
/// only) `POST /internal/recovery-clock` `{"advance_seconds": n}` moves the scheduler's clock.
struct RecoveryInternalAPI: Sendable {
    let jobs: RecoveryJobs
    let signer: InternalAPISigner
    let clockControl: Bool

    static let environmentKeys = ["PAYWIRE_RECOVERY_CLOCK_CONTROL"]

    func add(to router: Router<PaywireRequestContext>) {
        let group = router.group("/internal").add(middleware: InternalAPIAuthenticationMiddleware(signer: signer))
        group.get("/recovery/:job_id") { _, context in
            guard let job = try await job(try context.pathParameter("job_id")) else { throw APIError.notFound("Recovery job") }
            return JSONResponse(job)
        }
        if clockControl {
            group.post("/recovery-clock") { request, context in
                let body = try await RequestObject.read(from: request, context: context)
                let seconds = try body.integer("advance_seconds", range: 0...(366 * 86_400)) ?? 0
                jobs.clock.advance(by: Double(seconds))
                return JSONResponse(.object(["now": .string(PaywireJSON.format(jobs.clock.now()))]))
            }
        }
    }

    func job(_ jobId: String) async throws -> JSONValue? {
        let rows = try await jobs.postgres.query("""
            SELECT status, business_status, retry_count, schedule_time, tracking_data::text, created_at, updated_at
            FROM recovery.process_tracker WHERE id = \(jobId)
            """, logger: jobs.logger)
        for try await (status, business, retries, scheduled, data, created, updated) in rows.decode((String, String, Int, Date?, String, Date, Date).self) {
            let job = try PaywireJSON.decoder.decode(RecoveryJob.self, from: Data(data.utf8))
            func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
            let attempts = try await jobs.attempts(jobId).map { attempt -> JSONValue in
                .object([
                    "payment_id": .string(attempt.paymentId), "attempt_number": .number(Double(attempt.attemptNumber)), "status": .string(attempt.status),
                    "decline_code": text(attempt.declineCode), "raw_decline_code": text(attempt.rawDeclineCode), "advice_code": text(attempt.adviceCode),
                    "message": text(attempt.message), "connector": text(attempt.connector), "connector_transaction_id": text(attempt.connectorTransactionId),
                    "attempted_at": .string(PaywireJSON.format(attempt.attemptedAt)), "finished_at": attempt.finishedAt.map { .string(PaywireJSON.format($0)) } ?? .null,
                ])
            }
            return .object([
                "id": .string(jobId), "merchant_id": .string(job.merchantId), "profile_id": text(job.profileId),
                "merchant_reference_id": text(job.merchantReferenceId),
                "status": .string(business), "task_status": .string(status), "finish_reason": text(job.finishReason),
                "amount": .number(Double(job.amount)), "currency": .string(job.currency),
                "billing_connector_id": text(job.billingConnectorId), "payment_connector_id": .string(job.paymentConnectorId),
                "max_retry_count": .number(Double(job.maxRetryCount)), "billing_connector_retry_threshold": .number(Double(job.billingRetryThreshold)),
                "billing_attempts": .number(Double(job.billingAttempts)), "retry_count": .number(Double(retries)),
                "total_retry_count": .number(Double(job.billingAttempts + retries)),
                "next_run": (status == "pending" ? scheduled : nil).map { .string(PaywireJSON.format($0)) } ?? .null,
                "first_payment_attempt_error": .object([
                    "code": text(job.firstErrorCode), "network_decline_code": text(job.firstNetworkDeclineCode), "network_advice_code": text(job.firstNetworkAdviceCode),
                ]),
                "attempts": .array(attempts),
                "created": .string(PaywireJSON.format(created)), "modified_at": .string(PaywireJSON.format(updated)),
            ])
        }
        return nil
    }
}
