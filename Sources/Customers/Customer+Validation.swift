import FieldCrypto
import ForecourtCore
import Foundation
import RPC

/// Limits and rules of customer fields. Messages name the field, never its value: a value
/// may be personal data, and error messages must hold none (docs/protocol.md, "Errors").
enum CustomerRules {
    static let fullNameLength = 200
    static let emailLength = Normalize.maximumEmailLength
    /// Room for spaces, dashes and a `(0)` around the at most 16 characters of E.164.
    static let phoneLength = 40
    static let addressLineLength = 200
    static let cityLength = 100
    static let regionLength = 100
    static let postalCodeLength = 20
    static let countryLength = 100
    static let externalRefLength = 200

    static func fullName(_ params: Params, _ key: String = "full_name") throws -> String {
        let name = try params.string(key, maxLength: fullNameLength)
        // A name must leave something to match on (track.lookup) once normalised.
        guard Normalize.fullName(name) != nil else { throw params.invalid(key, "must contain letters") }
        return name
    }

    static func email(_ params: Params, _ raw: String?) throws -> String? {
        guard let raw else { return nil }
        guard let email = Normalize.email(raw) else {
            throw params.invalid("email", "must be an address with one @ and a dot in the domain")
        }
        return email
    }

    static func phone(_ params: Params, _ raw: String?) throws -> String? {
        guard let raw else { return nil }
        guard let phone = Normalize.phone(raw) else {
            throw params.invalid("phone", "must be an international (E.164) number: + and the country code, then the number")
        }
        return phone
    }

    static func externalRef(_ params: Params) throws -> String? {
        try params.optionalString("external_ref", maxLength: externalRefLength)
    }

    /// An address object, every member optional.
    static func address(_ params: Params) throws -> CustomerAddress {
        guard let object = try params.optionalObject("address") else { return CustomerAddress() }
        return CustomerAddress(
            line1: try object.optionalString("line1", maxLength: addressLineLength),
            line2: try object.optionalString("line2", maxLength: addressLineLength),
            city: try object.optionalString("city", maxLength: cityLength),
            region: try object.optionalString("region", maxLength: regionLength),
            postalCode: try object.optionalString("postal_code", maxLength: postalCodeLength),
            country: try object.optionalString("country", maxLength: countryLength))
    }

    /// The whole content of a customer (`customer.create`, a record of `upsert_batch`):
    /// members left out are empty (null, or false for the opt-ins).
    static func content(_ params: Params) throws -> CustomerContent {
        let fullName = try Self.fullName(params)
        let email = try Self.email(params, try params.optionalString("email", maxLength: emailLength))
        let phone = try Self.phone(params, try params.optionalString("phone", maxLength: phoneLength))
        let address = try Self.address(params)
        let notify = try params.optionalObject("notify")
        return CustomerContent(
            fullName: fullName, email: email, phone: phone, address: address,
            notifyEmail: try notify?.optionalBool("email") ?? false, notifySMS: try notify?.optionalBool("sms") ?? false)
    }

    /// A partial update (`customer.update`): absent members stay, null clears (except
    /// `full_name`, which every customer has).
    static func patch(_ params: Params) throws -> CustomerPatch {
        var patch = CustomerPatch()
        if params.contains("full_name") { patch.fullName = try Self.fullName(params) } else { _ = params.raw("full_name") }
        patch.email = try params.patchString("email", maxLength: emailLength)
        if case .set(let raw) = patch.email { patch.email = .set(try Self.email(params, raw) ?? raw) }
        patch.phone = try params.patchString("phone", maxLength: phoneLength)
        if case .set(let raw) = patch.phone { patch.phone = .set(try Self.phone(params, raw) ?? raw) }
        patch.externalRef = try params.patchString("external_ref", maxLength: externalRefLength)
        switch params.raw("address") {
        case nil:
            break
        case .null?:
            patch.clearAddress = true
        case .object?:
            let object = try params.object("address")
            patch.line1 = try object.patchString("line1", maxLength: addressLineLength)
            patch.line2 = try object.patchString("line2", maxLength: addressLineLength)
            patch.city = try object.patchString("city", maxLength: cityLength)
            patch.region = try object.patchString("region", maxLength: regionLength)
            patch.postalCode = try object.patchString("postal_code", maxLength: postalCodeLength)
            patch.country = try object.patchString("country", maxLength: countryLength)
        case let other?:
            throw params.invalid("address", "must be an object or null, not \(other.typeName)")
        }
        if params.contains("notify") {
            let notify = try params.object("notify")
            patch.notifyEmail = try notify.optionalBool("email")
            patch.notifySMS = try notify.optionalBool("sms")
        } else {
            _ = params.raw("notify")
        }
        return patch
    }
}

/// A partial update of a customer's content and `external_ref`.
public struct CustomerPatch: Sendable {
    public var fullName: String?
    public var email: Patch<String> = .unchanged
    public var phone: Patch<String> = .unchanged
    public var externalRef: Patch<String> = .unchanged
    /// `"address": null`: every line cleared.
    public var clearAddress = false
    public var line1: Patch<String> = .unchanged
    public var line2: Patch<String> = .unchanged
    public var city: Patch<String> = .unchanged
    public var region: Patch<String> = .unchanged
    public var postalCode: Patch<String> = .unchanged
    public var country: Patch<String> = .unchanged
    public var notifyEmail: Bool?
    public var notifySMS: Bool?

    public init() {}

    /// The content after this patch.
    public func applied(to current: CustomerContent) -> CustomerContent {
        var next = current
        if let fullName { next.fullName = fullName }
        next.email = email.applied(to: current.email)
        next.phone = phone.applied(to: current.phone)
        if clearAddress { next.address = CustomerAddress() }
        next.address.line1 = line1.applied(to: next.address.line1)
        next.address.line2 = line2.applied(to: next.address.line2)
        next.address.city = city.applied(to: next.address.city)
        next.address.region = region.applied(to: next.address.region)
        next.address.postalCode = postalCode.applied(to: next.address.postalCode)
        next.address.country = country.applied(to: next.address.country)
        if let notifyEmail { next.notifyEmail = notifyEmail }
        if let notifySMS { next.notifySMS = notifySMS }
        return next
    }
}
