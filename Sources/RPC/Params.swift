import ForecourtCore
import Foundation

/// Reads a method's parameters, naming the offending field in every error.
///
/// Each accessor records the member it read; `finish()` refuses members nobody read, so a
/// misspelt optional field is an error instead of a silent no-op. Paths are relative to
/// `params`: `email`, `address.city`, `records[3].email`.
public final class Params {
    public let object: JSONObject
    public let path: String
    private var read: Set<String> = []
    /// Nested objects handed out, checked by `finish()` too.
    private var children: [Params] = []

    public init(_ object: JSONObject, path: String = "") {
        self.object = object
        self.path = path
    }

    /// Params of a request: only objects are accepted (our methods take named parameters).
    public convenience init(request params: JSON) throws {
        guard case .object(let object) = params else {
            throw DomainError(.invalidParams, "params must be an object (named parameters)", field: "")
        }
        self.init(object)
    }

    /// The path of a member of this object.
    public func fieldPath(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    func fail(_ key: String, _ message: String) -> DomainError {
        DomainError.invalidParams(fieldPath(key), "\(fieldPath(key)) \(message)")
    }

    /// An error about a member, for validation done by callers.
    public func invalid(_ key: String, _ message: String) -> DomainError {
        fail(key, message)
    }

    /// The raw value; absent is nil, JSON null is `.null`.
    public func raw(_ key: String) -> JSON? {
        read.insert(key)
        return object[key]
    }

    /// Whether the member is present (null counts as present).
    public func contains(_ key: String) -> Bool {
        object[key] != nil
    }

    /// Refuses unknown members and duplicate names, here and in every nested object read.
    public func finish() throws {
        for child in children { try child.finish() }
        if let duplicate = object.duplicateKey {
            throw fail(duplicate, "appears more than once")
        }
        for key in object.keys where !read.contains(key) {
            throw DomainError.invalidParams(fieldPath(String(key.prefix(64))), "unknown parameter \(fieldPath(String(key.prefix(64))))")
        }
    }

    // MARK: strings

    public func optionalString(_ key: String, maxLength: Int = 200, allowEmpty: Bool = false) throws -> String? {
        switch raw(key) {
        case nil, .null?: return nil
        case .string(let s)?:
            if !allowEmpty && s.isEmpty { throw fail(key, "must not be empty") }
            if s.utf8.count > maxLength * 4 || s.count > maxLength {
                throw fail(key, "is longer than \(maxLength) characters")
            }
            if s.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" || $0.value == 0x7F }) {
                throw fail(key, "must not contain control characters")
            }
            return s
        case let other?: throw fail(key, "must be a string, not \(other.typeName)")
        }
    }

    public func string(_ key: String, maxLength: Int = 200, allowEmpty: Bool = false) throws -> String {
        guard let value = try optionalString(key, maxLength: maxLength, allowEmpty: allowEmpty) else {
            throw fail(key, "is required")
        }
        return value
    }

    /// A three-state member for partial updates: absent (unchanged), null (cleared) or a value.
    public func patchString(_ key: String, maxLength: Int = 200) throws -> Patch<String> {
        guard contains(key) else { read.insert(key); return .unchanged }
        if raw(key) == .null { return .clear }
        return .set(try string(key, maxLength: maxLength))
    }

    public func optionalEnum<E: RawRepresentable>(_ key: String, _ type: E.Type) throws -> E? where E.RawValue == String {
        guard let text = try optionalString(key, maxLength: 64) else { return nil }
        guard let value = E(rawValue: text) else { throw fail(key, "is not a known value") }
        return value
    }

    public func enumValue<E: RawRepresentable>(_ key: String, _ type: E.Type) throws -> E where E.RawValue == String {
        guard let value = try optionalEnum(key, type) else { throw fail(key, "is required") }
        return value
    }

    // MARK: numbers and booleans

    public func optionalInt(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        switch raw(key) {
        case nil, .null?: return nil
        case .number(let n)?:
            guard let value = n.intValue else { throw fail(key, "must be an integer") }
            guard range.contains(value) else {
                throw fail(key, "must be between \(range.lowerBound) and \(range.upperBound)")
            }
            return value
        case let other?: throw fail(key, "must be an integer, not \(other.typeName)")
        }
    }

    public func int(_ key: String, in range: ClosedRange<Int>) throws -> Int {
        guard let value = try optionalInt(key, in: range) else { throw fail(key, "is required") }
        return value
    }

    public func optionalBool(_ key: String) throws -> Bool? {
        switch raw(key) {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        case let other?: throw fail(key, "must be a boolean, not \(other.typeName)")
        }
    }

    public func bool(_ key: String) throws -> Bool {
        guard let value = try optionalBool(key) else { throw fail(key, "is required") }
        return value
    }

    // MARK: identifiers and times

    public func optionalUUID(_ key: String) throws -> UUID? {
        guard let text = try optionalString(key, maxLength: 36) else { return nil }
        guard let id = UUID(text: text) else { throw fail(key, "must be a UUID") }
        return id
    }

    public func uuid(_ key: String) throws -> UUID {
        guard let value = try optionalUUID(key) else { throw fail(key, "is required") }
        return value
    }

    /// An RFC 3339 timestamp with an offset.
    public func optionalTimestamp(_ key: String) throws -> Date? {
        guard let text = try optionalString(key, maxLength: 40) else { return nil }
        guard let date = RFC3339.parse(text) else {
            throw fail(key, "must be an RFC 3339 timestamp with an offset, like 2026-11-25T10:00:00Z")
        }
        return date
    }

    public func timestamp(_ key: String) throws -> Date {
        guard let value = try optionalTimestamp(key) else { throw fail(key, "is required") }
        return value
    }

    /// A calendar date `YYYY-MM-DD`.
    public func optionalDate(_ key: String) throws -> CalendarDate? {
        guard let text = try optionalString(key, maxLength: 10) else { return nil }
        guard let date = CalendarDate(text) else { throw fail(key, "must be a date like 2026-12-14") }
        return date
    }

    // MARK: nested values

    public func optionalObject(_ key: String) throws -> Params? {
        switch raw(key) {
        case nil, .null?: return nil
        case .object(let o)?: return adopt(Params(o, path: fieldPath(key)))
        case let other?: throw fail(key, "must be an object, not \(other.typeName)")
        }
    }

    public func object(_ key: String) throws -> Params {
        guard let value = try optionalObject(key) else { throw fail(key, "is required") }
        return value
    }

    public func optionalArray(_ key: String, count: ClosedRange<Int>) throws -> [JSON]? {
        switch raw(key) {
        case nil, .null?: return nil
        case .array(let elements)?:
            guard count.contains(elements.count) else {
                throw fail(key, "must have \(count.lowerBound) to \(count.upperBound) elements")
            }
            return elements
        case let other?: throw fail(key, "must be an array, not \(other.typeName)")
        }
    }

    /// An array of objects, each read by its own `Params` with the path `key[i]`.
    public func objects(_ key: String, count: ClosedRange<Int>) throws -> [Params] {
        guard let elements = try optionalArray(key, count: count) else { throw fail(key, "is required") }
        return try elements.enumerated().map { index, element in
            let elementPath = "\(fieldPath(key))[\(index)]"
            guard case .object(let o) = element else {
                throw DomainError.invalidParams(elementPath, "\(elementPath) must be an object")
            }
            return adopt(Params(o, path: elementPath))
        }
    }

    public func optionalStrings(_ key: String, count: ClosedRange<Int>, maxLength: Int) throws -> [String]? {
        guard let elements = try optionalArray(key, count: count) else { return nil }
        return try elements.enumerated().map { index, element in
            let elementPath = "\(fieldPath(key))[\(index)]"
            guard case .string(let s) = element, !s.isEmpty, s.count <= maxLength else {
                throw DomainError.invalidParams(
                    elementPath, "\(elementPath) must be a non-empty string of at most \(maxLength) characters")
            }
            return s
        }
    }

    private func adopt(_ child: Params) -> Params {
        children.append(child)
        return child
    }

    // MARK: list calls

    /// `limit` of every `*.list` call: default 50, 1 to 500.
    public func listLimit(default defaultLimit: Int = 50, maximum: Int = 500) throws -> Int {
        try optionalInt("limit", in: 1...maximum) ?? defaultLimit
    }

    /// `limit` and the opaque `after` cursor of a `*.list` call.
    public func listRequest() throws -> ListRequest {
        ListRequest(limit: try listLimit(), after: try optionalString("after", maxLength: 512))
    }
}

/// Where a page of a list starts and how long it is.
public struct ListRequest: Sendable {
    public let limit: Int
    public let after: String?
}
