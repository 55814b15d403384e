import ForecourtCore

/// A JSON Schema (the subset OpenRPC 1.x documents use), written in code beside the method it
/// describes. It documents a method for `rpc.discover`; it validates nothing: `Params` stays the
/// one place where parameters are checked, and the tests compare the two.
public struct Schema: Sendable, Equatable {
    public let json: JSON

    public init(_ json: JSON) { self.json = json }

    public static let string = Schema(["type": "string"])
    public static let boolean = Schema(["type": "boolean"])
    public static let integer = Schema(["type": "integer"])
    public static let uuid = Schema(["type": "string", "format": "uuid"])
    /// RFC 3339 with offset.
    public static let dateTime = Schema(["type": "string", "format": "date-time"])
    /// `2026-12-14`.
    public static let date = Schema(["type": "string", "format": "date", "examples": ["2026-12-14"]])
    /// `2026-W51`.
    public static let isoWeek = Schema(["type": "string", "pattern": "^[0-9]{4}-W[0-9]{2}$", "examples": ["2026-W51"]])
    /// An opaque list cursor, to be passed back as `after`.
    public static let cursor = Schema(["type": "string", "description": "opaque; pass back as after"])
    /// Anything (a free-form JSON value).
    public static let any = Schema([:])

    public static func string(maxLength: Int, minLength: Int = 1) -> Schema {
        Schema(["type": "string", "minLength": .int(minLength), "maxLength": .int(maxLength)])
    }

    public static func integer(_ range: ClosedRange<Int>) -> Schema {
        Schema(["type": "integer", "minimum": .int(range.lowerBound), "maximum": .int(range.upperBound)])
    }

    public static func oneOf(_ values: [String]) -> Schema {
        Schema(["type": "string", "enum": .array(values.map(JSON.string))])
    }

    public static func array(_ items: Schema, minItems: Int? = nil, maxItems: Int? = nil) -> Schema {
        var object: JSONObject = ["type": "array", "items": items.json]
        if let minItems { object["minItems"] = .int(minItems) }
        if let maxItems { object["maxItems"] = .int(maxItems) }
        return Schema(.object(object))
    }

    /// An object with exactly these members (every one present; nullable ones say so).
    public static func object(_ properties: KeyValuePairs<String, Schema>) -> Schema {
        var members = JSONObject()
        for (name, schema) in properties { members[name] = schema.json }
        return Schema([
            "type": "object", "properties": .object(members),
            "required": .array(properties.map { JSON.string($0.key) }), "additionalProperties": false,
        ])
    }

    /// An object whose members are all optional (partial updates, sub-objects of parameters).
    public static func partialObject(_ properties: KeyValuePairs<String, Schema>) -> Schema {
        var members = JSONObject()
        for (name, schema) in properties { members[name] = schema.json }
        return Schema(["type": "object", "properties": .object(members), "additionalProperties": false])
    }

    /// This schema or `null`.
    public var orNull: Schema {
        Schema(["oneOf": [json, ["type": "null"]]])
    }

    /// An object schema with one more member that need not be present (a field being added).
    public func adding(_ name: String, _ schema: Schema) -> Schema {
        guard case .object(var object) = json, case .object(var properties)? = object["properties"] else { return self }
        properties[name] = schema.json
        object["properties"] = .object(properties)
        return Schema(.object(object))
    }

    /// The same schema with an example value (JSON Schema `examples`), for readers of the
    /// document and for the tests that hold schemas to what `Params` accepts.
    public func example(_ value: JSON) -> Schema {
        guard case .object(var object) = json else { return self }
        object["examples"] = [value]
        return Schema(.object(object))
    }

    /// The same schema with a description.
    public func described(_ text: String) -> Schema {
        guard case .object(var object) = json else { return self }
        object["description"] = .string(text)
        return Schema(.object(object))
    }

    /// The contract's list result: `{"items": [...], "next": cursor-or-null}`.
    public static func page(of item: Schema) -> Schema {
        .object(["items": .array(item), "next": Schema.cursor.orNull])
    }
}

/// What `rpc.discover` says about a method: its parameters and result as JSON Schema, and the
/// errors it may give beyond those every method of its access may give.
public struct MethodSchema: Sendable {
    public struct Parameter: Sendable {
        public let name: String
        public let schema: Schema
        public let required: Bool
    }

    public let summary: String
    public let params: [Parameter]
    public let result: Schema
    public let errors: [DomainError.Code]

    /// - Parameters:
    ///   - params: the named parameters, in the order a reader meets them.
    ///   - errors: the domain errors the method itself may give; invalid params, internal errors
    ///     and, for methods that need a session, unauthenticated and forbidden are added.
    public init(_ summary: String, params: [Parameter] = [], result: Schema, errors: [DomainError.Code] = []) {
        self.summary = summary
        self.params = params
        self.result = result
        self.errors = errors
    }
}

extension MethodSchema.Parameter {
    public static func required(_ name: String, _ schema: Schema) -> Self {
        Self(name: name, schema: schema, required: true)
    }

    public static func optional(_ name: String, _ schema: Schema) -> Self {
        Self(name: name, schema: schema, required: false)
    }

    /// `limit` and `after` of every `*.list` call.
    public static let listParameters: [Self] = [
        .optional("limit", .integer(1...500).described("default 50")), .optional("after", .cursor),
    ]
}

extension [DomainError.Code] {
    /// A read that needs the database.
    public static let read: Self = [.unavailable]
    /// A write: the database may also break while committing.
    public static let write: Self = [.unavailable, .outcomeUnknown]
}
