import ForecourtCore
import Foundation
import RPC

/// The vehicle an order is for.
public struct VehicleModel: Sendable, Equatable {
    public var code: String
    public var year: Int
    public var trim: String?
}

/// Validation of order fields; every failure names its parameter.
enum OrderRules {
    /// Model and option codes: an upper-case letter or digit, then letters, digits and dashes, up to 16.
    static func code(_ text: String, field: String) throws -> String {
        let code = text.uppercased()
        let scalars = Array(code.unicodeScalars)
        let allowed = scalars.allSatisfy { ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        guard (1...16).contains(scalars.count), allowed, scalars.first != "-" else {
            throw DomainError.invalidParams(field, "\(field) must be 1 to 16 letters, digits and dashes")
        }
        return code
    }

    static func model(_ params: Params) throws -> VehicleModel {
        let model = try params.object("model")
        return VehicleModel(
            code: try code(try model.string("code", maxLength: 16), field: model.fieldPath("code")),
            year: try model.int("year", in: 1990...2100),
            trim: try model.optionalString("trim", maxLength: 50))
    }

    static func options(_ params: Params) throws -> [String]? {
        guard let raw = try params.optionalStrings("options", count: 0...100, maxLength: 16) else { return nil }
        var seen: Set<String> = []
        return try raw.enumerated().map { index, text in
            let field = "\(params.fieldPath("options"))[\(index)]"
            let option = try code(text, field: field)
            guard seen.insert(option).inserted else { throw DomainError.invalidParams(field, "\(field) is repeated") }
            return option
        }
    }

    static func color(_ params: Params, _ key: String, required: Bool) throws -> String? {
        let value = try params.optionalString(key, maxLength: 50)
        if required, value == nil { throw params.invalid(key, "is required") }
        return value
    }
}
