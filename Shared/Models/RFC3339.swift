import Foundation

/// RFC 3339 date-times as JSON Schema's `date-time` format means them: `T` or `t`, `Z`, `z` or an
/// offset, any number of fractional digits, a leap second (`:60`) taken as the second before.
public enum RFC3339 {
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20 else { return nil }
        func digits(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for index in range {
                let byte = bytes[index]
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = digits(0..<4), bytes[4] == 0x2D, let month = digits(5..<7), bytes[7] == 0x2D, let day = digits(8..<10),
              bytes[10] == 0x54 || bytes[10] == 0x74, let hour = digits(11..<13), bytes[13] == 0x3A, let minute = digits(14..<16),
              bytes[16] == 0x3A, let second = digits(17..<19)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < bytes.count, bytes[index] == 0x2E {
            index += 1
            var scale = 0.1
            let start = index
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) {
                fraction += Double(bytes[index] - 0x30) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        guard index < bytes.count else { return nil }
        var offsetSeconds = 0
        switch bytes[index] {
        case 0x5A, 0x7A:
            guard index + 1 == bytes.count else { return nil }
        case 0x2B, 0x2D:
            guard index + 6 == bytes.count, let offsetHour = digits(index + 1..<index + 3), bytes[index + 3] == 0x3A,
                  let offsetMinute = digits(index + 4..<index + 6), offsetHour <= 23, offsetMinute <= 59
            else { return nil }
            offsetSeconds = (offsetHour * 3600 + offsetMinute * 60) * (bytes[index] == 0x2D ? -1 : 1)
        default:
            return nil
        }
        guard (1...12).contains(month), hour <= 23, minute <= 59, second <= 60 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let daysInMonth = calendar.range(of: .day, in: .month, for: calendar.date(from: DateComponents(year: year, month: month, day: 1))!)!.count
        guard (1...daysInMonth).contains(day),
              let midnight = calendar.date(from: DateComponents(year: year, month: month, day: day))
        else { return nil }
        let seconds = Double(hour * 3600 + minute * 60 + min(second, 59)) + (second == 60 ? 0.999 : fraction)
        return midnight.addingTimeInterval(seconds - Double(offsetSeconds))
    }
}
