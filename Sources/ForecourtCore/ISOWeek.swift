/// An ISO 8601 week (`2026-W51`): the production week of `scheduled_week`.
public struct ISOWeek: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let year: Int
    public let week: Int

    /// A week that exists in its ISO year (week 53 only in long years), or nil.
    public init?(year: Int, week: Int) {
        guard (1...9999).contains(year), week >= 1, week <= ISOWeek.weeks(inYear: year) else { return nil }
        self.year = year
        self.week = week
    }

    /// Parses exactly `YYYY-Www`.
    public init?(_ text: String) {
        let b = Array(text.utf8)
        guard b.count == 8, b[4] == UInt8(ascii: "-"), b[5] == UInt8(ascii: "W") else { return nil }
        var year = 0
        var week = 0
        for i in [0, 1, 2, 3, 6, 7] {
            guard b[i] >= 48, b[i] <= 57 else { return nil }
            if i < 4 { year = year * 10 + Int(b[i] - 48) } else { week = week * 10 + Int(b[i] - 48) }
        }
        self.init(year: year, week: week)
    }

    /// The Monday of the week.
    public var monday: CalendarDate {
        // January 4th is always in week 1.
        let jan4 = CalendarDate(year: year, month: 1, day: 4) ?? CalendarDate(daysSinceEpoch: 0)
        let week1Monday = jan4.daysSinceEpoch - (jan4.isoWeekday - 1)
        return CalendarDate(daysSinceEpoch: week1Monday + (week - 1) * 7)
    }

    public var description: String { year.zeroPadded(4) + "-W" + week.zeroPadded(2) }

    public static func < (lhs: ISOWeek, rhs: ISOWeek) -> Bool { (lhs.year, lhs.week) < (rhs.year, rhs.week) }

    /// 53 when the year starts on a Thursday, or is a leap year starting on a Wednesday; else 52.
    static func weeks(inYear year: Int) -> Int {
        guard let jan1 = CalendarDate(year: year, month: 1, day: 1) else { return 52 }
        let leap = CalendarDate.daysIn(month: 2, year: year) == 29
        return jan1.isoWeekday == 4 || (leap && jan1.isoWeekday == 3) ? 53 : 52
    }
}
