import ForecourtCore
import Foundation

/// A JSON value.
///
/// Our own type rather than `JSONSerialization` so that the endpoint controls every limit
/// (depth, sizes), sees duplicate member names, and echoes numeric ids exactly as sent.
/// Objects keep their members in order; lookups are linear, which is faster than hashing
/// for the small objects of this protocol.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number, kept as its JSON text (validated by the parser or produced by us).
    case number(JSONNumber)
    case string(String)
    case array([JSON])
    case object(JSONObject)

    public static func int<I: BinaryInteger>(_ value: I) -> JSON { .number(JSONNumber(value)) }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var arrayValue: [JSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var intValue: Int? {
        if case .number(let n) = self { return n.intValue }
        return nil
    }

    /// Member lookup on objects; nil for other values.
    public subscript(key: String) -> JSON? {
        objectValue?[key]
    }

    /// The JSON type's name, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// A JSON number held as its canonical text.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The number's JSON text, e.g. `42`, `-1.5e3`.
    public let text: String

    /// Trusted text: the parser validated it, or we produced it.
    init(validatedText: String) {
        self.text = validatedText
    }

    public init<I: BinaryInteger>(_ value: I) {
        self.text = String(value)
    }

    public init(_ value: Double) {
        precondition(value.isFinite, "JSON has no NaN or infinity")
        self.text = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }

    /// The value as an `Int` if it is exactly an integer in range (`3.0` and `3e2` count; `3.5`,
    /// `1e-999` and `5.0000000000000000001` do not). Computed from the decimal text, never
    /// through a `Double`, which would round `9007199254740993.0` to another integer and
    /// `1e-999` to 0.
    public var intValue: Int? {
        if let exact = Int(text) { return exact }
        return Self.exactInteger(Array(text.utf8))
    }

    /// The integer a JSON number's text denotes, or nil when it has a non-zero fraction or
    /// does not fit an `Int`. The text is valid JSON (at most 512 characters: the parser's limit).
    static func exactInteger(_ bytes: [UInt8]) -> Int? {
        var index = 0
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { index += 1 }
        var digits: [UInt8] = []
        var exponent = 0
        var inFraction = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: ".") {
                inFraction = true
            } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                break
            } else {
                digits.append(byte - UInt8(ascii: "0"))
                if inFraction { exponent -= 1 }
            }
            index += 1
        }
        if index < bytes.count {
            // The exponent, saturated: a few hundred digits of mantissa cannot make up for more.
            index += 1
            var sign = 1
            if bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
                if bytes[index] == UInt8(ascii: "-") { sign = -1 }
                index += 1
            }
            var written = 0
            while index < bytes.count {
                written = min(written * 10 + Int(bytes[index] - UInt8(ascii: "0")), 100_000)
                index += 1
            }
            exponent += sign * written
        }
        guard let first = digits.firstIndex(where: { $0 != 0 }) else { return 0 }
        var significant = digits[first...]
        while significant.last == 0 {
            significant.removeLast()
            exponent += 1
        }
        // A non-zero digit after the point, or more digits than any Int has.
        guard exponent >= 0, significant.count + exponent <= 19 else { return nil }
        // Accumulated as a negative number, so that Int.min fits.
        var value = 0
        for digit in significant + repeatElement(0, count: exponent) {
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = times10.subtractingReportingOverflow(Int(digit))
            guard !o1, !o2 else { return nil }
            value = next
        }
        if negative { return value }
        return value == Int.min ? nil : -value
    }

    public var doubleValue: Double? { Double(text) }

    public var description: String { text }
}

/// A JSON object: members in order. Duplicate names are kept as sent so that readers can
/// refuse them (`Params` does) instead of silently picking one.
public struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral, Sequence {
    public var members: [(key: String, value: JSON)]

    public init() { members = [] }

    public init(_ members: [(key: String, value: JSON)]) { self.members = members }

    public init(dictionaryLiteral elements: (String, JSON)...) {
        members = elements.map { (key: $0.0, value: $0.1) }
    }

    /// The first member of that name.
    public subscript(key: String) -> JSON? {
        get {
            for member in members where member.key == key { return member.value }
            return nil
        }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append((key: key, value: newValue))
            }
        }
    }

    public var count: Int { members.count }
    public var keys: [String] { members.map(\.key) }

    /// The first name that appears more than once, if any.
    public var duplicateKey: String? {
        guard members.count > 1 else { return nil }
        if members.count <= 16 {
            for i in 1..<members.count where members[..<i].contains(where: { $0.key == members[i].key }) {
                return members[i].key
            }
            return nil
        }
        var seen = Set<String>()
        for member in members where !seen.insert(member.key).inserted { return member.key }
        return nil
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSON)]> { members.makeIterator() }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.members.count == rhs.members.count
            && zip(lhs.members, rhs.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(JSONObject(elements.map { (key: $0.0, value: $0.1) }))
    }
    public init(nilLiteral: ()) { self = .null }
}

/// Types that have a JSON form in responses.
public protocol JSONRepresentable {
    var json: JSON { get }
}

extension JSON: JSONRepresentable {
    public var json: JSON { self }
}

extension String: JSONRepresentable {
    public var json: JSON { .string(self) }
}

extension Int: JSONRepresentable {
    public var json: JSON { .int(self) }
}

extension Bool: JSONRepresentable {
    public var json: JSON { .bool(self) }
}

extension Optional: JSONRepresentable where Wrapped: JSONRepresentable {
    public var json: JSON { self?.json ?? .null }
}

extension Array: JSONRepresentable where Element: JSONRepresentable {
    /// A closure, not the key path `\.json`: a key path over a generic element type is built
    /// at run time on every call, which was 2 % of `order.get`'s CPU (docs/performance.md).
    public var json: JSON { .array(map { $0.json }) }
}

extension UUID: JSONRepresentable {
    /// Identifiers are lowercase UUID strings.
    public var json: JSON { .string(lowercaseString) }

    /// `uuidString.lowercased()` in one allocation (ForecourtCore's writer, also used for the
    /// row-level security settings): every response names ids (docs/performance.md).
    public var lowercaseString: String { lowercasedText }
}
