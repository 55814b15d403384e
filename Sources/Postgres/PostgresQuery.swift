/// A SQL statement and its bind parameters.
///
/// Built by string interpolation: every interpolated value becomes a `$n` parameter, so a
/// value can never become SQL. Text that must be SQL (an identifier chosen by code, never by
/// a request) is interpolated with `unsafeSQL:`.
///
/// ```swift
/// let query: PostgresQuery = "SELECT name FROM forecourt.dealers WHERE id = \(dealerID)"
/// ```
public struct PostgresQuery: Sendable, Hashable, ExpressibleByStringInterpolation {
    public var sql: String
    public var bindings: PostgresBindings

    public init(unsafeSQL sql: String, bindings: PostgresBindings = PostgresBindings()) {
        self.sql = sql
        self.bindings = bindings
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, bindings: stringInterpolation.bindings)
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        @usableFromInline var sql: String
        @usableFromInline var bindings = PostgresBindings()

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql = ""
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// A bind parameter (`$n`).
        @inlinable
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value) {
            bindings.append(value)
            sql += "$\(bindings.count)"
        }

        /// A bind parameter that may be NULL (an explicit overload, so that optionals are
        /// not mistaken for accidental string interpolation).
        @inlinable
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            bindings.append(value)
            sql += "$\(bindings.count)"
        }

        /// SQL text chosen by code (a table name, a fixed fragment). Never pass request data.
        public mutating func appendInterpolation(unsafeSQL text: String) {
            sql += text
        }
    }
}

/// Bind parameters in binary format, with their types.
public struct PostgresBindings: Sendable, Hashable {
    public var types: [UInt32] { storedTypes }
    /// nil is SQL NULL.
    public var values: [[UInt8]?] { storedValues }
    // Stored behind inlinable `append`, so callers specialise the encoding of each value.
    @usableFromInline var storedTypes: [UInt32] = []
    @usableFromInline var storedValues: [[UInt8]?] = []

    public init() {}

    public var count: Int { values.count }

    @inlinable
    public mutating func append<Value: PostgresEncodable>(_ value: Value) {
        storedTypes.append(Value.postgresType.rawValue)
        if value.isPostgresNull {
            storedValues.append(nil)
        } else {
            var buffer: [UInt8] = []
            value.encode(into: &buffer)
            storedValues.append(buffer)
        }
    }
}
