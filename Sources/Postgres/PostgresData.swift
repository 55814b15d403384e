import Foundation

/// A PostgreSQL type OID. Parameters are sent and results received in binary format, so
/// every Swift type that crosses the wire names the type it is.
public struct PostgresType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let bool = PostgresType(rawValue: 16)
    public static let bytea = PostgresType(rawValue: 17)
    public static let name = PostgresType(rawValue: 19)
    public static let int8 = PostgresType(rawValue: 20)
    public static let int2 = PostgresType(rawValue: 21)
    public static let int4 = PostgresType(rawValue: 23)
    public static let text = PostgresType(rawValue: 25)
    public static let float8 = PostgresType(rawValue: 701)
    public static let bpchar = PostgresType(rawValue: 1042)
    public static let varchar = PostgresType(rawValue: 1043)
    public static let date = PostgresType(rawValue: 1082)
    public static let timestamptz = PostgresType(rawValue: 1184)
    public static let uuid = PostgresType(rawValue: 2950)
    public static let jsonb = PostgresType(rawValue: 3802)
    public static let boolArray = PostgresType(rawValue: 1000)
    public static let byteaArray = PostgresType(rawValue: 1001)
    public static let int4Array = PostgresType(rawValue: 1007)
    public static let int8Array = PostgresType(rawValue: 1016)
    public static let textArray = PostgresType(rawValue: 1009)
    public static let dateArray = PostgresType(rawValue: 1182)
    public static let timestamptzArray = PostgresType(rawValue: 1185)
    public static let uuidArray = PostgresType(rawValue: 2951)
    public static let jsonbArray = PostgresType(rawValue: 3807)
}

/// A value that can be a bind parameter (binary format).
public protocol PostgresEncodable: Sendable {
    static var postgresType: PostgresType { get }
    /// Whether this value is SQL NULL (only `Optional.none` is).
    var isPostgresNull: Bool { get }
    /// Appends the binary representation (not called for NULL).
    func encode(into buffer: inout [UInt8])
}

extension PostgresEncodable {
    @inlinable public var isPostgresNull: Bool { false }
}

/// A value that can be read from a binary result column.
public protocol PostgresDecodable {
    /// Decodes from the column's bytes, nil for SQL NULL.
    static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> Self
}

/// A type that can be an element of a PostgreSQL array parameter or column.
public protocol PostgresArrayElement: PostgresEncodable, PostgresDecodable {
    static var postgresArrayType: PostgresType { get }
}

extension PostgresError {
    static func decoding(_ swiftType: Any.Type, _ type: PostgresType, _ why: String) -> PostgresError {
        PostgresError(.decoding, context: "\(swiftType) from OID \(type.rawValue): \(why)")
    }
}

/// Reads big-endian values from a column's bytes, with bounds checks.
struct BinaryReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func read<T: FixedWidthInteger>(_: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { return nil }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(bigEndian: value)
    }

    mutating func slice(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }
}

extension Array where Element == UInt8 {
    @inlinable mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}

private func nonNull<T>(_ bytes: UnsafeRawBufferPointer?, _: T.Type, _ type: PostgresType) throws(PostgresError)
    -> UnsafeRawBufferPointer
{
    guard let bytes else { throw .decoding(T.self, type, "unexpected NULL") }
    return bytes
}

// MARK: - Optional

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public static var postgresType: PostgresType { Wrapped.postgresType }
    @inlinable public var isPostgresNull: Bool { self == nil }
    @inlinable public func encode(into buffer: inout [UInt8]) { self?.encode(into: &buffer) }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> Self {
        guard let bytes else { return nil }
        return try Wrapped.decode(bytes, type: type)
    }
}

extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement {
    public static var postgresArrayType: PostgresType { Wrapped.postgresArrayType }
}

// MARK: - Scalars

extension String: PostgresArrayElement {
    public static var postgresType: PostgresType { .text }
    public static var postgresArrayType: PostgresType { .textArray }
    public func encode(into buffer: inout [UInt8]) { buffer.append(contentsOf: utf8) }
    public static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> String {
        let bytes = try nonNull(bytes, String.self, type)
        switch type {
        case .text, .varchar, .name, .bpchar:
            return String(decoding: bytes, as: UTF8.self)
        default:
            throw .decoding(String.self, type, "not a text type")
        }
    }
}

extension Bool: PostgresArrayElement {
    public static var postgresType: PostgresType { .bool }
    public static var postgresArrayType: PostgresType { .boolArray }
    public func encode(into buffer: inout [UInt8]) { buffer.append(self ? 1 : 0) }
    public static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> Bool {
        let bytes = try nonNull(bytes, Bool.self, type)
        guard type == .bool, bytes.count == 1 else { throw .decoding(Bool.self, type, "not a bool") }
        return bytes[0] != 0
    }
}

extension Int: PostgresArrayElement {
    public static var postgresType: PostgresType { .int8 }
    public static var postgresArrayType: PostgresType { .int8Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(Int64(self)) }
    public static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> Int {
        let bytes = try nonNull(bytes, Int.self, type)
        var reader = BinaryReader(bytes)
        let value: Int?
        switch (type, bytes.count) {
        case (.int8, 8): value = reader.read(Int64.self).map(Int.init)
        case (.int4, 4): value = reader.read(Int32.self).map(Int.init)
        case (.int2, 2): value = reader.read(Int16.self).map(Int.init)
        default: value = nil
        }
        guard let value else { throw .decoding(Int.self, type, "not an integer") }
        return value
    }
}

extension Int32: PostgresArrayElement {
    public static var postgresType: PostgresType { .int4 }
    public static var postgresArrayType: PostgresType { .int4Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(self) }
    public static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> Int32 {
        let wide = try Int.decode(bytes, type: type)
        guard let value = Int32(exactly: wide) else { throw .decoding(Int32.self, type, "out of range") }
        return value
    }
}

extension Double: PostgresEncodable, PostgresDecodable {
    public static var postgresType: PostgresType { .float8 }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(bitPattern) }
    public static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> Double {
        let bytes = try nonNull(bytes, Double.self, type)
        var reader = BinaryReader(bytes)
        guard type == .float8, let bits = reader.read(UInt64.self) else {
            throw .decoding(Double.self, type, "not a float8")
        }
        return Double(bitPattern: bits)
    }
}

extension UUID: PostgresArrayElement {
    public static var postgresType: PostgresType { .uuid }
    public static var postgresArrayType: PostgresType { .uuidArray }
    public func encode(into buffer: inout [UInt8]) {
        withUnsafeBytes(of: uuid) { buffer.append(contentsOf: $0) }
    }
    public static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> UUID {
        let bytes = try nonNull(bytes, UUID.self, type)
        guard type == .uuid, bytes.count == 16 else { throw .decoding(UUID.self, type, "not a uuid") }
        var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: bytes) }
        return UUID(uuid: value)
    }
}

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01 (UTC).
private let postgresEpochOffsetSeconds: Int64 = 946_684_800

extension Date: PostgresArrayElement {
    public static var postgresType: PostgresType { .timestamptz }
    public static var postgresArrayType: PostgresType { .timestamptzArray }
    public func encode(into buffer: inout [UInt8]) {
        buffer.appendBigEndian(postgresMicroseconds)
    }

    /// This time as PostgreSQL stores it: whole microseconds since 2000-01-01 (rounded).
    /// Compare these, not `Date`s, to tell whether a time is older than a stored one: a
    /// `Date` finer than a microsecond, or one decoded through floating point, can differ
    /// from the stored value by less than a microsecond.
    public var postgresMicroseconds: Int64 {
        Int64((timeIntervalSince1970 * 1_000_000).rounded() - Double(postgresEpochOffsetSeconds) * 1_000_000)
    }
    public static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> Date {
        let bytes = try nonNull(bytes, Date.self, type)
        var reader = BinaryReader(bytes)
        guard type == .timestamptz, let micros = reader.read(Int64.self) else {
            throw .decoding(Date.self, type, "not a timestamptz")
        }
        guard micros != .max, micros != .min else { throw .decoding(Date.self, type, "infinite timestamp") }
        return Date(timeIntervalSince1970: Double(micros) / 1_000_000 + Double(postgresEpochOffsetSeconds))
    }
}

/// A PostgreSQL `date`: a day count, free of time zones.
public struct PostgresDate: PostgresArrayElement, Hashable, Comparable {
    /// Days since 1970-01-01.
    public var daysSinceUnixEpoch: Int

    public init(daysSinceUnixEpoch: Int) { self.daysSinceUnixEpoch = daysSinceUnixEpoch }

    public static func < (a: PostgresDate, b: PostgresDate) -> Bool { a.daysSinceUnixEpoch < b.daysSinceUnixEpoch }

    /// Days between 1970-01-01 and 2000-01-01.
    private static let epochOffsetDays = 10_957

    public static var postgresType: PostgresType { .date }
    public static var postgresArrayType: PostgresType { .dateArray }
    public func encode(into buffer: inout [UInt8]) {
        buffer.appendBigEndian(Int32(clamping: daysSinceUnixEpoch - Self.epochOffsetDays))
    }
    public static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> PostgresDate {
        let bytes = try nonNull(bytes, PostgresDate.self, type)
        var reader = BinaryReader(bytes)
        guard type == .date, let days = reader.read(Int32.self) else {
            throw .decoding(PostgresDate.self, type, "not a date")
        }
        return PostgresDate(daysSinceUnixEpoch: Int(days) + epochOffsetDays)
    }
}

/// `bytea`.
extension Array: PostgresEncodable where Element: PostgresArrayElement {
    public static var postgresType: PostgresType {
        Element.self == UInt8.self ? .bytea : Element.postgresArrayType
    }

    // Inlinable so that callers' modules specialise it: unspecialised, every element of a
    // bulk parameter went through witness tables and metadata lookups.
    @inlinable
    public func encode(into buffer: inout [UInt8]) {
        if Element.self == UInt8.self {
            // The same type, so the bit cast is exact; a dynamic `as?` would walk every byte.
            buffer.append(contentsOf: unsafeBitCast(self, to: [UInt8].self))
            return
        }
        // One dimension, lower bound 1; the element type is what the element says it is.
        let elementType = Element.postgresType
        buffer.appendBigEndian(Int32(isEmpty ? 0 : 1))
        buffer.appendBigEndian(Int32(contains(where: { $0.isPostgresNull }) ? 1 : 0))
        buffer.appendBigEndian(elementType.rawValue)
        guard !isEmpty else { return }
        buffer.appendBigEndian(Int32(count))
        buffer.appendBigEndian(Int32(1))
        for element in self {
            if element.isPostgresNull {
                buffer.appendBigEndian(Int32(-1))
                continue
            }
            // The element is encoded in place, then its length is written in front of it.
            let lengthAt = buffer.count
            buffer.appendBigEndian(Int32(0))
            element.encode(into: &buffer)
            let length = UInt32(buffer.count - lengthAt - 4)
            for byte in 0..<4 { buffer[lengthAt + byte] = UInt8(truncatingIfNeeded: length >> (24 - 8 * byte)) }
        }
    }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    public static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> [Element] {
        let bytes = try nonNull(bytes, [Element].self, type)
        if Element.self == UInt8.self {
            guard type == .bytea else { throw .decoding([UInt8].self, type, "not a bytea") }
            // The generic `Array` cannot be built from bytes directly; the types are the same.
            return unsafeBitCast(Array<UInt8>(bytes), to: [Element].self)
        }
        var reader = BinaryReader(bytes)
        guard let dimensions = reader.read(Int32.self), reader.read(Int32.self) != nil,
            let elementOID = reader.read(UInt32.self)
        else { throw .decoding([Element].self, type, "bad array header") }
        if dimensions == 0 { return [] }
        guard dimensions == 1, let count = reader.read(Int32.self), reader.read(Int32.self) != nil, count >= 0 else {
            throw .decoding([Element].self, type, "only one-dimensional arrays are read")
        }
        let elementType = PostgresType(rawValue: elementOID)
        var result: [Element] = []
        result.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let length = reader.read(Int32.self) else { throw .decoding([Element].self, type, "truncated") }
            if length < 0 {
                result.append(try Element.decode(nil, type: elementType))
            } else {
                guard let slice = reader.slice(Int(length)) else { throw .decoding([Element].self, type, "truncated") }
                result.append(try Element.decode(slice, type: elementType))
            }
        }
        return result
    }
}

extension UInt8: PostgresArrayElement {
    // Only ever used as the element of `[UInt8]`, which is `bytea`.
    public static var postgresType: PostgresType { .bytea }
    public static var postgresArrayType: PostgresType { .bytea }
    public func encode(into buffer: inout [UInt8]) { buffer.append(self) }
    public static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> UInt8 {
        throw .decoding(UInt8.self, type, "single bytes are not a column type")
    }
}

/// A `jsonb` value, as the UTF-8 text of a JSON document (the caller parses and writes it).
public struct PostgresJSONB: PostgresArrayElement, Hashable {
    public var text: [UInt8]

    public init(text: [UInt8]) { self.text = text }

    public static var postgresType: PostgresType { .jsonb }
    public static var postgresArrayType: PostgresType { .jsonbArray }
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(1)  // jsonb binary format version
        buffer.append(contentsOf: text)
    }
    public static func decode(_ bytes: UnsafeRawBufferPointer?, type: PostgresType) throws(PostgresError) -> PostgresJSONB {
        let bytes = try nonNull(bytes, PostgresJSONB.self, type)
        guard type == .jsonb, bytes.first == 1 else { throw .decoding(PostgresJSONB.self, type, "not jsonb") }
        return PostgresJSONB(text: Array(bytes.dropFirst()))
    }
}

/// `bytea[]` (for batches of ciphertexts or blind indexes).
extension Array: PostgresArrayElement where Element: PostgresArrayElement {
    public static var postgresArrayType: PostgresType {
        // Only arrays of bytea have an array type of their own; deeper nesting is not used.
        Element.self == UInt8.self ? .byteaArray : PostgresType(rawValue: 0)
    }
}
