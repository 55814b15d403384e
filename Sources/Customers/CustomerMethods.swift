import FieldCrypto
import ForecourtCore
import Foundation
import RPC

/// `customer.create`, `get`, `update`, `find`, `upsert_batch`, `changes`, `erase`
/// (docs/protocol.md, "customers"). Group admins, dealer managers, sales and CRM sync read and write the
/// customers of their group; auditors only read.
public enum CustomerMethods {
    static let writers: Set<Role> = [.groupAdmin, .dealerManager, .sales, .crmSync]
    static let readers: Set<Role> = writers.union([.auditor])

    struct Update: Sendable {
        let id: UUID
        let version: Int
        let patch: CustomerPatch
    }

    public static func all(_ service: CustomerService) -> [RPCMethod] {
        [
            RPCMethod(
                "customer.create", roles: writers, mutating: true, schema: .customerCreate,
                decode: { params in (try CustomerRules.externalRef(params), try CustomerRules.content(params)) },
                run: { context, input in
                    try await service.create(caller: try context.caller, externalRef: input.0, content: input.1)
                }),
            RPCMethod(
                "customer.get", roles: readers, schema: .customerGet, decode: { try $0.uuid("id") },
                run: { context, id in try await service.get(caller: try context.caller, id: id) }),
            RPCMethod(
                "customer.update", roles: writers, mutating: true, schema: .customerUpdate,
                decode: { params in
                    Update(
                        id: try params.uuid("id"), version: try params.int("version", in: 1...Int(Int32.max)),
                        patch: try CustomerRules.patch(params))
                },
                run: { context, input in
                    try await service.update(caller: try context.caller, id: input.id, version: input.version, patch: input.patch)
                }),
            RPCMethod(
                "customer.find", roles: readers, schema: .customerFind, decode: decodeLookup,
                run: { context, lookup in
                    let items = try await service.find(caller: try context.caller, lookup)
                    return ["items": items.json] as JSON
                }),
            RPCMethod(
                "customer.upsert_batch", roles: writers, mutating: true, schema: .customerUpsertBatch, decode: decodeBatch,
                run: { context, records in
                    let results = try await service.upsertBatch(caller: try context.caller, records)
                    return ["results": results.json] as JSON
                }),
            RPCMethod(
                "customer.changes", roles: readers, schema: .customerChanges,
                decode: { params in
                    (try params.optionalString("after", maxLength: 512), try params.listLimit())
                },
                run: { context, input in
                    try await service.changes(caller: try context.caller, after: input.0, limit: input.1)
                }),
            RPCMethod(
                "customer.erase", roles: writers, mutating: true, schema: .customerErase, decode: { try $0.uuid("id") },
                run: { context, id in
                    try await service.erase(caller: try context.caller, id: id)
                    return ["id": id.json, "erased": true] as JSON
                }),
        ]
    }

    /// `{"email"}`, `{"phone"}` or `{"external_ref"}`: exactly one, normalised as stored.
    static func decodeLookup(_ params: Params) throws -> CustomerService.Lookup {
        let email = try params.optionalString("email", maxLength: CustomerRules.emailLength)
        let phone = try params.optionalString("phone", maxLength: CustomerRules.phoneLength)
        let ref = try CustomerRules.externalRef(params)
        switch (email, phone, ref) {
        case (let email?, nil, nil):
            guard let normalized = try CustomerRules.email(params, email) else { break }
            return .email(normalized)
        case (nil, let phone?, nil):
            guard let normalized = try CustomerRules.phone(params, phone) else { break }
            return .phone(normalized)
        case (nil, nil, let ref?):
            return .externalRef(ref)
        default:
            break
        }
        throw DomainError.invalidParams("", "give exactly one of email, phone or external_ref")
    }

    /// Every record validated, and `external_ref`s distinct: one bad record fails the whole
    /// batch, naming `records[i].field`.
    static func decodeBatch(_ params: Params) throws -> [CustomerUpsertRecord] {
        let records = try params.objects("records", count: 1...CustomerService.batchLimit)
        var seen: Set<String> = []
        seen.reserveCapacity(records.count)
        return try records.map { record in
            let ref = try record.string("external_ref", maxLength: CustomerRules.externalRefLength)
            guard seen.insert(ref).inserted else {
                throw record.invalid("external_ref", "repeats an external_ref of an earlier record of this batch")
            }
            return CustomerUpsertRecord(
                externalRef: ref, content: try CustomerRules.content(record),
                sourceUpdatedAt: try record.timestamp("source_updated_at"))
        }
    }
}
