import FieldCrypto
import ForecourtCore
import RPC

/// `track.lookup` (docs/protocol.md, "tracking"), for `portal` keys only.
public enum TrackingMethods {
    public static func all(_ service: TrackingService) -> [RPCMethod] {
        [
            RPCMethod(
                "track.lookup", roles: [.portal], schema: .trackLookup,
                decode: { params in
                    let last8 = try params.string("vin_last8", maxLength: 8)
                    guard let vin = VIN.validatedLast8(last8) else {
                        throw params.invalid("vin_last8", "must be the last 8 characters of a VIN")
                    }
                    let name = try params.string("full_name", maxLength: 200)
                    guard let normalized = Normalize.fullName(name) else { throw params.invalid("full_name", "must not be blank") }
                    return (vin: vin, name: normalized)
                },
                run: { context, input in
                    try await service.lookup(caller: try context.caller, vinLast8: input.vin, fullName: input.name)
                }),
        ]
    }
}
