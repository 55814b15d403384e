import Foundation

/// RFC 3339 timestamps (always with an offset) and calendar dates, without Foundation's
/// formatters: they are on every response's hot path and must not accept what RFC 3339 does not.
public enum RFC3339 {
    /// Formats in UTC with microseconds when the value has a fraction: `2026-11-25T10:00:00.123456Z`.
    public static func format(_ date: Date) -> String {
        let totalMicros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        var seconds = Int64((totalMicros / 1_000_000).rounded(.down))
        var micros = Int64(totalMicros - Double(seconds) * 1_000_000)
        if micros < 0 { micros += 1_000_000; seconds -= 1 }
        if micros >= 1_000_000 { micros -= 1_000_000; seconds += 1 }
        let days = Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400)
        let secondOfDay = Int(seconds - Int64(days) * 86_400)
        let civil = CalendarDate(daysSinceEpoch: days)
        guard (0...9999).contains(civil.year) else {
            var text = civil.description
            text += "T" + (secondOfDay / 3600).zeroPadded(2) + ":" + (secondOfDay / 60 % 60).zeroPadded(2)
            text += ":" + (secondOfDay % 60).zeroPadded(2)
            if micros != 0 { text += "." + micros.zeroPadded(6) }
            return text + "Z"
        }
        // Written digit by digit into one string: on every response's path (docs/performance.md).
        return String(unsafeUninitializedCapacity: 27) { out in
            var i = civil.write(into: out)
            out[i] = UInt8(ascii: "T")
            i = writeDigits(secondOfDay / 3600, width: 2, into: out, at: i + 1)
            out[i] = UInt8(ascii: ":")
            i = writeDigits(secondOfDay / 60 % 60, width: 2, into: out, at: i + 1)
            out[i] = UInt8(ascii: ":")
            i = writeDigits(secondOfDay % 60, width: 2, into: out, at: i + 1)
            if micros != 0 {
                out[i] = UInt8(ascii: ".")
                i = writeDigits(Int(micros), width: 6, into: out, at: i + 1)
            }
            out[i] = UInt8(ascii: "Z")
            return i + 1
        }
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `t`/`z` and a space separator are accepted
    /// as RFC 3339 allows. Returns nil for anything else, including a missing offset.
    public static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count >= 20, b.count <= 40 else { return nil }
        func num(_ range: Range<Int>) -> Int? {
            var v = 0
            for i in range {
                guard b[i] >= 48, b[i] <= 57 else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard let year = num(0..<4), b[4] == 45, let month = num(5..<7), b[7] == 45, let day = num(8..<10),
              b[10] == 84 || b[10] == 116 || b[10] == 32,
              let hour = num(11..<13), b[13] == 58, let minute = num(14..<16), b[16] == 58,
              let second = num(17..<19),
              let date = CalendarDate(year: year, month: month, day: day),
              hour < 24, minute < 60, second < 61
        else { return nil }
        var i = 19
        var fraction = 0.0
        if b[i] == 46 {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                fraction += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
            guard i > start, i - start <= 9 else { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45 {
            guard b.count - i == 6, let oh = num(i + 1..<i + 3), b[i + 3] == 58, let om = num(i + 4..<i + 6),
                  oh < 24, om < 60 else { return nil }
            offset = (oh * 60 + om) * 60 * (b[i] == 45 ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let seconds = Double(date.daysSinceEpoch) * 86_400 + Double(hour * 3600 + minute * 60 + min(second, 59))
            - Double(offset)
        return Date(timeIntervalSince1970: seconds + fraction)
    }

}

/// A calendar date without time or zone (`eta`, `promised_eta`).
public struct CalendarDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    /// A valid proleptic-Gregorian date between years 1 and 9999, or nil.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month), day >= 1,
              day <= CalendarDate.daysIn(month: month, year: year) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses exactly `YYYY-MM-DD`.
    public init?(_ text: String) {
        let b = Array(text.utf8)
        guard b.count == 10, b[4] == 45, b[7] == 45 else { return nil }
        var parts = [0, 0, 0]
        for (n, range) in [0..<4, 5..<7, 8..<10].enumerated() {
            for i in range {
                guard b[i] >= 48, b[i] <= 57 else { return nil }
                parts[n] = parts[n] * 10 + Int(b[i] - 48)
            }
        }
        self.init(year: parts[0], month: parts[1], day: parts[2])
    }

    /// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    public init(daysSinceEpoch: Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.year = yoe + era * 400 + (m <= 2 ? 1 : 0)
        self.month = m
        self.day = d
    }

    /// Days since 1970-01-01.
    public var daysSinceEpoch: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// ISO weekday, Monday = 1 ... Sunday = 7.
    public var isoWeekday: Int {
        let d = (daysSinceEpoch + 3) % 7  // 1970-01-01 was a Thursday
        return (d < 0 ? d + 7 : d) + 1
    }

    public var description: String {
        guard (0...9999).contains(year) else {
            return year.zeroPadded(4) + "-" + month.zeroPadded(2) + "-" + day.zeroPadded(2)
        }
        return String(unsafeUninitializedCapacity: 10) { write(into: $0) }
    }

    /// Writes `YYYY-MM-DD` (10 bytes, a year of four digits) at the start of `out`; returns 10.
    func write(into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        var i = writeDigits(year, width: 4, into: out, at: 0)
        out[i] = UInt8(ascii: "-")
        i = writeDigits(month, width: 2, into: out, at: i + 1)
        out[i] = UInt8(ascii: "-")
        return writeDigits(day, width: 2, into: out, at: i + 1)
    }

    public static func < (lhs: CalendarDate, rhs: CalendarDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// Writes the last `width` decimal digits of a non-negative `value` at `index`, zero-padded;
/// returns the index after them.
@inline(__always)
func writeDigits(_ value: Int, width: Int, into out: UnsafeMutableBufferPointer<UInt8>, at index: Int) -> Int {
    var value = value
    var position = index + width - 1
    while position >= index {
        out[position] = UInt8(ascii: "0") + UInt8(value % 10)
        value /= 10
        position -= 1
    }
    return index + width
}
