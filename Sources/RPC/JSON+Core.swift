import ForecourtCore
import Foundation

extension Date: JSONRepresentable {
    /// Timestamps are RFC 3339 strings in UTC.
    public var json: JSON { .string(RFC3339.format(self)) }
}

extension Page: JSONRepresentable where Item: JSONRepresentable {
    /// The contract's list shape: `{"items": [...], "next": cursor-or-null}`.
    public var json: JSON { ["items": items.json, "next": next.json] }
}
