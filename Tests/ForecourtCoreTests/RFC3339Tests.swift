import ForecourtCore
import Foundation
import Testing

@Suite struct RFC3339Tests {
    @Test func parsesWithOffsetsAndFractions() throws {
        let utc = try #require(RFC3339.parse("2026-12-02T05:04:42Z"))
        #expect(utc.timeIntervalSince1970 == 1_796_187_882)
        #expect(RFC3339.parse("2026-12-02T06:04:42+01:00") == utc)
        #expect(RFC3339.parse("2026-12-01T23:04:42-06:00") == utc)
        #expect(RFC3339.parse("2026-12-02t05:04:42z") == utc)
        let fractional = try #require(RFC3339.parse("2026-12-02T05:04:42.123456Z"))
        #expect(abs(fractional.timeIntervalSince(utc) - 0.123456) < 0.000_001)
    }

    @Test func refusesWhatRFC3339DoesNot() {
        for text in [
            "2026-12-02T05:04:42", "2026-12-02", "2026-13-02T05:04:42Z", "2026-02-30T05:04:42Z", "2026-12-02T24:00:00Z",
            "2026-12-02T05:04:42+0100", "2026-12-02T05:04:42.Z", "2026-12-02T05:04:42Zjunk", " 2026-12-02T05:04:42Z",
        ] {
            #expect(RFC3339.parse(text) == nil, "\(text)")
        }
    }

    @Test func formatsInUTCAndRoundTrips() throws {
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_796_187_882)) == "2026-12-02T05:04:42Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59Z")
        let date = Date(timeIntervalSince1970: 1_796_187_882.25)
        #expect(RFC3339.format(date) == "2026-12-02T05:04:42.250000Z")
        #expect(RFC3339.parse(RFC3339.format(date)) == date)
        // Years outside four digits (PostgreSQL stores them) are written in full, as before.
        #expect(RFC3339.format(Date(timeIntervalSince1970: 253_402_300_800)) == "10000-01-01T00:00:00Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -62_135_596_801)) == "0000-12-31T23:59:59Z")
        #expect(CalendarDate(daysSinceEpoch: 2_932_897).description == "10000-01-01")
    }

    @Test func calendarDates() throws {
        let date = try #require(CalendarDate("2026-12-14"))
        #expect(date.daysSinceEpoch == 20_801)
        #expect(CalendarDate(daysSinceEpoch: 20_801) == date)
        #expect(date.isoWeekday == 1)  // a Monday
        #expect(date.description == "2026-12-14")
        #expect(CalendarDate("2024-02-29") != nil)
        #expect(CalendarDate("2026-02-29") == nil)
        #expect(CalendarDate("2026-1-01") == nil)
    }
}
